package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/message"
)

var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// msg returns a message with the given ID, time offset from base and meta.
func msg(id string, offset time.Duration, meta map[string]string) *message.Message {
	return &message.Message{
		ID:          id,
		Time:        base.Add(offset),
		ContentType: "application/json",
		Payload:     []byte(`{"id":"` + id + `"}`),
		Meta:        meta,
	}
}

func ids(recs []*Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Message.ID
	}
	return out
}

func states(h []Transition) []State {
	out := make([]State, len(h))
	for i, t := range h {
		out[i] = t.State
	}
	return out
}

// stores lists every store implementation with a constructor for tests.
func stores() map[string]func(t *testing.T) Store {
	return map[string]func(t *testing.T) Store{
		"memory": func(t *testing.T) Store { return NewMemory() },
		"file": func(t *testing.T) Store {
			s, err := OpenFile(t.TempDir())
			require.NoError(t, err)
			return s
		},
		"sqlite": func(t *testing.T) Store {
			s, err := OpenSQLite(filepath.Join(t.TempDir(), "store.db"))
			require.NoError(t, err)
			return s
		},
		"sqlite-memory": func(t *testing.T) Store {
			s, err := OpenSQLite(":memory:")
			require.NoError(t, err)
			return s
		},
	}
}

func TestConformance(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			runConformance(t, open)
		})
	}
}

// runConformance checks the behaviour every Store must have. open returns
// a new, empty store; runConformance closes it.
func runConformance(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	newStore := func(t *testing.T) Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { assert.NoError(t, s.Close()) })
		return s
	}

	t.Run("put and get", func(t *testing.T) {
		s := newStore(t)
		m := message.New("text/plain", []byte("hello"), map[string]string{"http.path": "/in"})
		before := time.Now().UTC()
		require.NoError(t, s.Put(ctx, m))

		rec, err := s.Get(ctx, m.ID)
		require.NoError(t, err)
		assert.Equal(t, m, rec.Message)
		assert.Equal(t, Pending, rec.State)
		assert.Empty(t, rec.Err)
		assert.Zero(t, rec.Attempts)
		require.Len(t, rec.History, 1)
		assert.Equal(t, Pending, rec.History[0].State)
		assert.Equal(t, rec.Updated, rec.History[0].At)
		assert.False(t, rec.Updated.Before(before.Truncate(time.Millisecond)))
		assert.Equal(t, time.UTC, rec.Updated.Location())
	})

	t.Run("begin puts and starts processing in one step", func(t *testing.T) {
		s := newStore(t)
		m := message.New("application/json", []byte(`{"a":1}`), map[string]string{"k": "v"})
		require.NoError(t, s.Begin(ctx, m))
		rec, err := s.Get(ctx, m.ID)
		require.NoError(t, err)
		assert.Equal(t, Processing, rec.State)
		assert.Equal(t, 1, rec.Attempts)
		require.Len(t, rec.History, 2)
		assert.Equal(t, Pending, rec.History[0].State)
		assert.Equal(t, Processing, rec.History[1].State)
		n, err := s.Count(ctx, Query{States: []State{Processing}})
		require.NoError(t, err)
		assert.Equal(t, 1, n, "searchable by its new state")
		assert.ErrorIs(t, s.Begin(ctx, m), ErrExists)
		require.NoError(t, s.Transition(ctx, m.ID, Done, Update{Context: map[string]any{"x": 1.0}}))
		rec, err = s.Get(ctx, m.ID)
		require.NoError(t, err)
		assert.Equal(t, Done, rec.State)
		assert.Equal(t, 1, rec.Attempts)
	})

	t.Run("payload kinds are kept byte for byte", func(t *testing.T) {
		s := newStore(t)
		tests := []struct {
			id, ct  string
			payload []byte
		}{
			{"json", "application/json", []byte(`{"a":[1,2]}`)},
			{"pretty-json", "application/json", []byte("{\n  \"a\": 1\n}\n")},
			{"text", "text/plain", []byte("héllo <world>")},
			{"binary", "application/octet-stream", []byte{0, 0xff, 0xfe, 1}},
			{"empty", "text/plain", []byte{}},
			{"nil", "", nil},
		}
		for _, tt := range tests {
			require.NoError(t, s.Put(ctx, &message.Message{ID: tt.id, Time: base, ContentType: tt.ct, Payload: tt.payload}))
		}
		for _, tt := range tests {
			rec, err := s.Get(ctx, tt.id)
			require.NoError(t, err)
			assert.Equal(t, tt.payload, rec.Message.Payload, tt.id)
			assert.Equal(t, tt.payload == nil, rec.Message.Payload == nil, tt.id)
			assert.Equal(t, tt.ct, rec.Message.ContentType)
		}
	})

	t.Run("messages are normalized", func(t *testing.T) {
		s := newStore(t)
		local := time.FixedZone("x", 2*3600)
		m := &message.Message{
			ID:      "n",
			Time:    time.Date(2024, 1, 1, 2, 0, 0, 5, local),
			Meta:    map[string]string{},
			Context: map[string]any{"n": 1, "list": []string{"a"}},
			Trace:   json.RawMessage(`[ {"step": "a"} ]`),
		}
		require.NoError(t, s.Put(ctx, m))
		rec, err := s.Get(ctx, "n")
		require.NoError(t, err)
		assert.Equal(t, time.Date(2024, 1, 1, 0, 0, 0, 5, time.UTC), rec.Message.Time)
		assert.Equal(t, map[string]string{}, rec.Message.Meta)
		assert.Equal(t, map[string]any{"n": 1.0, "list": []any{"a"}}, rec.Message.Context)
		assert.Equal(t, json.RawMessage(`[{"step":"a"}]`), rec.Message.Trace)
	})

	t.Run("put rejects invalid messages", func(t *testing.T) {
		s := newStore(t)
		tests := map[string]*message.Message{
			"nil":          nil,
			"empty id":     {Time: base},
			"non-utf8 id":  {ID: "\xff", Time: base},
			"time":         {ID: "t", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
			"bad trace":    {ID: "tr", Time: base, Trace: json.RawMessage(`{`)},
			"bad context":  {ID: "c", Time: base, Context: map[string]any{"ch": make(chan int)}},
			"func in ctx":  {ID: "f", Time: base, Context: map[string]any{"f": func() {}}},
			"trace spaces": {ID: "ts", Time: base, Trace: json.RawMessage(` `)},
		}
		for name, m := range tests {
			err := s.Put(ctx, m)
			assert.ErrorIs(t, err, ErrInvalid, name)
		}
		n, err := s.Count(ctx, Query{})
		require.NoError(t, err)
		assert.Zero(t, n)
	})

	t.Run("put existing id", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Put(ctx, msg("dup", 0, nil)))
		require.NoError(t, s.Transition(ctx, "dup", Processing, Update{}))
		err := s.Put(ctx, msg("dup", time.Hour, nil))
		require.ErrorIs(t, err, ErrExists)
		var oe *OpError
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, "put", oe.Op)
		assert.Equal(t, "dup", oe.ID)
		assert.Contains(t, err.Error(), `put "dup"`)

		rec, err := s.Get(ctx, "dup")
		require.NoError(t, err)
		assert.Equal(t, base, rec.Message.Time, "the first message is kept")
		assert.Equal(t, Processing, rec.State)
	})

	t.Run("transitions record history and attempts", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Put(ctx, msg("a", 0, nil)))
		steps := []struct {
			to       State
			u        Update
			attempts int
		}{
			{Processing, Update{}, 1},
			{Error, Update{Err: "boom", Context: map[string]any{"step": "one"}, Trace: json.RawMessage(`["one"]`)}, 1},
			{Processing, Update{}, 2},
			{Done, Update{Context: map[string]any{"step": "two", "total": 3.5}, Trace: json.RawMessage(`["one","two"]`)}, 2},
		}
		var last time.Time
		for i, st := range steps {
			require.NoError(t, s.Transition(ctx, "a", st.to, st.u), i)
			rec, err := s.Get(ctx, "a")
			require.NoError(t, err)
			assert.Equal(t, st.to, rec.State, i)
			assert.Equal(t, st.attempts, rec.Attempts, i)
			assert.Equal(t, st.u.Err, rec.Err, i)
			require.Len(t, rec.History, i+2)
			assert.Equal(t, Transition{State: st.to, At: rec.Updated, Err: st.u.Err}, rec.History[i+1])
			assert.False(t, rec.Updated.Before(last))
			last = rec.Updated
		}
		rec, err := s.Get(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, []State{Pending, Processing, Error, Processing, Done}, states(rec.History))
		assert.Equal(t, "boom", rec.History[2].Err)
		assert.Equal(t, map[string]any{"step": "two", "total": 3.5}, rec.Message.Context)
		assert.JSONEq(t, `["one","two"]`, string(rec.Message.Trace))
		assert.Equal(t, []byte(`{"id":"a"}`), rec.Message.Payload, "payload untouched")

		// A transition without context or trace keeps the stored ones;
		// replaying a finished message counts another attempt.
		require.NoError(t, s.Transition(ctx, "a", Processing, Update{}))
		rec, err = s.Get(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, 3, rec.Attempts)
		assert.Equal(t, map[string]any{"step": "two", "total": 3.5}, rec.Message.Context)
		assert.JSONEq(t, `["one","two"]`, string(rec.Message.Trace))

		// An empty (non-nil) context replaces the stored one.
		require.NoError(t, s.Transition(ctx, "a", Done, Update{Context: map[string]any{}}))
		rec, err = s.Get(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, map[string]any{}, rec.Message.Context)
	})

	t.Run("transition rejects bad arguments", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Put(ctx, msg("a", 0, nil)))
		assert.ErrorIs(t, s.Transition(ctx, "a", "finished", Update{}), ErrInvalid)
		assert.ErrorIs(t, s.Transition(ctx, "a", "", Update{}), ErrInvalid)
		assert.ErrorIs(t, s.Transition(ctx, "a", Done, Update{Trace: json.RawMessage(`nope`)}), ErrInvalid)
		assert.ErrorIs(t, s.Transition(ctx, "a", Done, Update{Context: map[string]any{"c": make(chan int)}}), ErrInvalid)
		rec, err := s.Get(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, Pending, rec.State)
		assert.Len(t, rec.History, 1)
	})

	t.Run("not found", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Get(ctx, "nope")
		require.ErrorIs(t, err, ErrNotFound)
		assert.Regexp(t, `^store [a-z]+: get "nope": message not found$`, err.Error())

		err = s.Transition(ctx, "nope", Done, Update{})
		require.ErrorIs(t, err, ErrNotFound)
		var oe *OpError
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, OpError{Store: oe.Store, Op: "transition", ID: "nope", To: Done, Err: ErrNotFound}, *oe)
		assert.Regexp(t, `^store [a-z]+: transition "nope" to done: message not found$`, err.Error())
	})

	t.Run("search and count", func(t *testing.T) {
		s := newStore(t)
		weird := `we"ird\key.x[0] <&>`
		seed := []struct {
			m     *message.Message
			state State
		}{
			{msg("m0", 0, map[string]string{"src": "http", "path": "/a"}), Pending},
			{msg("m1", time.Minute, map[string]string{"src": "http", "path": "/b"}), Processing},
			{msg("m2", 2*time.Minute, map[string]string{"src": "cron"}), Done},
			{msg("m3", 3*time.Minute, map[string]string{"src": "file", "file.name": "x.csv", weird: "v"}), Error},
			{msg("m5", 4*time.Minute, map[string]string{"src": "cron"}), Done},
			{msg("m4", 4*time.Minute, map[string]string{"src": "http", "path": "/a"}), Rejected},
		}
		for _, sd := range seed {
			require.NoError(t, s.Put(ctx, sd.m))
			if sd.state != Pending {
				require.NoError(t, s.Transition(ctx, sd.m.ID, sd.state, Update{}))
			}
		}
		all := []string{"m0", "m1", "m2", "m3", "m4", "m5"}
		tests := []struct {
			name  string
			q     Query
			want  []string
			count int // -1: len(want)
		}{
			{"all", Query{}, all, -1},
			{"desc", Query{Desc: true}, []string{"m5", "m4", "m3", "m2", "m1", "m0"}, -1},
			{"one state", Query{States: []State{Done}}, []string{"m2", "m5"}, -1},
			{"two states", Query{States: []State{Processing, Pending}}, []string{"m0", "m1"}, -1},
			{"no match state", Query{States: []State{Pending, Error, Rejected}, Meta: map[string]string{"src": "cron"}}, []string{}, -1},
			{"since", Query{Since: base.Add(2 * time.Minute)}, []string{"m2", "m3", "m4", "m5"}, -1},
			{"until is exclusive", Query{Until: base.Add(2 * time.Minute)}, []string{"m0", "m1"}, -1},
			{"range", Query{Since: base.Add(time.Minute), Until: base.Add(4 * time.Minute)}, []string{"m1", "m2", "m3"}, -1},
			{"range in other zone", Query{Since: base.Add(time.Minute).In(time.FixedZone("y", -5*3600)), Until: base.Add(2*time.Minute + time.Nanosecond)}, []string{"m1", "m2"}, -1},
			{"empty range", Query{Since: base.Add(3 * time.Minute), Until: base.Add(time.Minute)}, []string{}, -1},
			{"far future since", Query{Since: time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{}, -1},
			{"far future until", Query{Until: time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC)}, all, -1},
			{"far past until", Query{Until: time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{}, -1},
			{"meta", Query{Meta: map[string]string{"src": "http"}}, []string{"m0", "m1", "m4"}, -1},
			{"meta all must match", Query{Meta: map[string]string{"src": "http", "path": "/a"}}, []string{"m0", "m4"}, -1},
			{"meta missing key is no match", Query{Meta: map[string]string{"path": ""}}, []string{}, -1},
			{"meta dotted key", Query{Meta: map[string]string{"file.name": "x.csv"}}, []string{"m3"}, -1},
			{"meta weird key", Query{Meta: map[string]string{weird: "v"}}, []string{"m3"}, -1},
			{"meta no match", Query{Meta: map[string]string{"src": "nats"}}, []string{}, -1},
			{"limit", Query{Limit: 2}, []string{"m0", "m1"}, 6},
			{"offset", Query{Offset: 4}, []string{"m4", "m5"}, 6},
			{"limit offset desc", Query{Limit: 2, Offset: 1, Desc: true}, []string{"m4", "m3"}, 6},
			{"offset past end", Query{Offset: 10}, []string{}, 6},
			{"combined", Query{States: []State{Done}, Meta: map[string]string{"src": "cron"}, Desc: true, Limit: 1}, []string{"m5"}, 2},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				recs, err := s.Search(ctx, tt.q)
				require.NoError(t, err)
				assert.Equal(t, tt.want, ids(recs))
				for _, r := range recs {
					require.NotEmpty(t, r.History)
					assert.Equal(t, r.State, r.History[len(r.History)-1].State)
				}
				n, err := s.Count(ctx, tt.q)
				require.NoError(t, err)
				want := tt.count
				if want < 0 {
					want = len(tt.want)
				}
				assert.Equal(t, want, n)
			})
		}

		for name, q := range map[string]Query{
			"bad state":       {States: []State{"zzz"}},
			"negative limit":  {Limit: -1},
			"negative offset": {Offset: -1},
		} {
			_, err := s.Search(ctx, q)
			assert.ErrorIs(t, err, ErrInvalid, name)
			_, err = s.Count(ctx, q)
			assert.ErrorIs(t, err, ErrInvalid, name)
		}
	})

	t.Run("records are copies", func(t *testing.T) {
		s := newStore(t)
		m := msg("c", 0, map[string]string{"k": "v"})
		m.Context = map[string]any{"nested": map[string]any{"x": "y"}, "list": []any{"a"}}
		require.NoError(t, s.Put(ctx, m))
		// Changing the message after Put changes nothing.
		m.Payload[0] = 'X'
		m.Meta["k"] = "changed"
		m.Context["nested"].(map[string]any)["x"] = "changed"
		require.NoError(t, s.Transition(ctx, "c", Processing, Update{}))

		mutate := func(r *Record) {
			r.State = Error
			r.Attempts = 99
			r.History[0].State = Done
			r.History = append(r.History, Transition{State: Error})
			r.Message.Payload[0] = 'Y'
			r.Message.Meta["k"] = "mutated"
			r.Message.Context["nested"].(map[string]any)["x"] = "mutated"
			r.Message.Context["list"].([]any)[0] = "mutated"
			r.Message.ID = "other"
		}
		check := func() {
			t.Helper()
			rec, err := s.Get(ctx, "c")
			require.NoError(t, err)
			assert.Equal(t, Processing, rec.State)
			assert.Equal(t, 1, rec.Attempts)
			assert.Equal(t, []State{Pending, Processing}, states(rec.History))
			assert.Equal(t, []byte(`{"id":"c"}`), rec.Message.Payload)
			assert.Equal(t, map[string]string{"k": "v"}, rec.Message.Meta)
			assert.Equal(t, map[string]any{"nested": map[string]any{"x": "y"}, "list": []any{"a"}}, rec.Message.Context)
		}
		check()
		rec, err := s.Get(ctx, "c")
		require.NoError(t, err)
		mutate(rec)
		check()
		recs, err := s.Search(ctx, Query{})
		require.NoError(t, err)
		require.Len(t, recs, 1)
		mutate(recs[0])
		check()
		// A transition's update is copied too.
		u := Update{Context: map[string]any{"k": "v"}, Trace: json.RawMessage(`[1]`)}
		require.NoError(t, s.Transition(ctx, "c", Processing, u))
		u.Context["k"] = "mutated"
		u.Trace[1] = '2'
		rec, err = s.Get(ctx, "c")
		require.NoError(t, err)
		assert.Equal(t, map[string]any{"k": "v"}, rec.Message.Context)
		assert.Equal(t, json.RawMessage(`[1]`), rec.Message.Trace)
	})

	t.Run("concurrent use", func(t *testing.T) {
		s := newStore(t)
		const n = 50
		var wg sync.WaitGroup
		errs := make(chan error, 10*n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("c%02d", i)
				steps := []func() error{
					func() error {
						return s.Put(ctx, msg(id, time.Duration(i)*time.Second, map[string]string{"g": fmt.Sprint(i % 5)}))
					},
					func() error { return s.Transition(ctx, id, Processing, Update{}) },
					func() error { _, err := s.Get(ctx, id); return err },
					func() error { _, err := s.Search(ctx, Query{Meta: map[string]string{"g": "1"}, Limit: 3}); return err },
					func() error {
						return s.Transition(ctx, id, Done, Update{Context: map[string]any{"i": float64(i)}, Trace: json.RawMessage(`[]`)})
					},
					func() error { _, err := s.Count(ctx, Query{States: []State{Done}}); return err },
				}
				for _, step := range steps {
					if err := step(); err != nil {
						errs <- err
						return
					}
				}
				// Every goroutine also races for one shared ID.
				if err := s.Put(ctx, msg("shared", 0, nil)); err != nil && !errors.Is(err, ErrExists) {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		done, err := s.Search(ctx, Query{States: []State{Done}})
		require.NoError(t, err)
		require.Len(t, done, n)
		for i, r := range done {
			assert.Equal(t, fmt.Sprintf("c%02d", i), r.Message.ID)
			assert.Equal(t, 1, r.Attempts)
			assert.Equal(t, []State{Pending, Processing, Done}, states(r.History))
			assert.Equal(t, map[string]any{"i": float64(i)}, r.Message.Context)
		}
		total, err := s.Count(ctx, Query{})
		require.NoError(t, err)
		assert.Equal(t, n+1, total)
	})

	t.Run("recover", func(t *testing.T) {
		s := newStore(t)
		recs, err := Recover(ctx, s)
		require.NoError(t, err)
		assert.Empty(t, recs)

		for i, st := range []State{Done, Processing, Error, Pending, Rejected, Processing} {
			id := fmt.Sprintf("r%d", i)
			// Later IDs get earlier times: Recover orders by time.
			require.NoError(t, s.Put(ctx, msg(id, time.Duration(10-i)*time.Minute, nil)))
			if st != Pending {
				require.NoError(t, s.Transition(ctx, id, st, Update{}))
			}
		}
		recs, err = Recover(ctx, s)
		require.NoError(t, err)
		assert.Equal(t, []string{"r5", "r3", "r1"}, ids(recs))
	})

	t.Run("canceled context", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Put(ctx, msg("a", 0, nil)))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		assert.ErrorIs(t, s.Put(cctx, msg("b", 0, nil)), context.Canceled)
		assert.ErrorIs(t, s.Transition(cctx, "a", Done, Update{}), context.Canceled)
		_, err := s.Get(cctx, "a")
		assert.ErrorIs(t, err, context.Canceled)
		_, err = s.Search(cctx, Query{})
		assert.ErrorIs(t, err, context.Canceled)
		_, err = s.Count(cctx, Query{})
		assert.ErrorIs(t, err, context.Canceled)
		rec, err := s.Get(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, Pending, rec.State)
		_, err = s.Get(ctx, "b")
		assert.ErrorIs(t, err, ErrNotFound)
	})

	t.Run("closed", func(t *testing.T) {
		s := open(t)
		require.NoError(t, s.Put(ctx, msg("a", 0, nil)))
		require.NoError(t, s.Close())
		require.NoError(t, s.Close(), "closing again is harmless")

		assert.ErrorIs(t, s.Put(ctx, msg("b", 0, nil)), ErrClosed)
		assert.ErrorIs(t, s.Transition(ctx, "a", Done, Update{}), ErrClosed)
		_, err := s.Get(ctx, "a")
		assert.ErrorIs(t, err, ErrClosed)
		_, err = s.Search(ctx, Query{})
		assert.ErrorIs(t, err, ErrClosed)
		_, err = s.Count(ctx, Query{})
		assert.ErrorIs(t, err, ErrClosed)
		_, err = Recover(ctx, s)
		assert.ErrorIs(t, err, ErrClosed)
		assert.True(t, strings.HasPrefix(err.Error(), "recover: store "), err.Error())
	})
}

// The direct copy of JSON-shaped values gives what a JSON round trip gives.
func TestJSONCopyMatchesRoundTrip(t *testing.T) {
	type item struct {
		SKU string  `json:"sku"`
		Qty float32 `json:"qty"`
	}
	ctx := map[string]any{
		"s": "text", "b": true, "f": 2.5, "i": 7, "i64": int64(1) << 60, "u8": uint8(3),
		"nil": nil, "list": []any{1, "a", []any{2.5}}, "nested": map[string]any{"k": []any{map[string]any{"x": 1}}},
		"typed": []item{{SKU: "a", Qty: 0.1}}, "ints": []int{1, 2}, "bad": "\xff",
	}
	s := NewMemory()
	m := message.New("application/json", []byte(`{}`), nil)
	m.Context = ctx
	require.NoError(t, s.Put(context.Background(), m))
	rec, err := s.Get(context.Background(), m.ID)
	require.NoError(t, err)
	data, err := json.Marshal(ctx)
	require.NoError(t, err)
	var want map[string]any
	require.NoError(t, json.Unmarshal(data, &want))
	assert.Equal(t, want, rec.Message.Context)
}

func TestNormalizeTrace(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":"x y","b":[1,2]}`:               `{"a":"x y","b":[1,2]}`,
		"{ \"a\" : \"x y\",\n \"b\":[1, 2] }": `{"a":"x y","b":[1,2]}`,
		`{"a":"quote \" and space "}`:         `{"a":"quote \" and space "}`,
		`["\\", " "]`:                         `["\\"," "]`,
	} {
		got, err := NormalizeUpdate(Done, Update{Trace: json.RawMessage(in)})
		require.NoError(t, err, in)
		assert.Equal(t, want, string(got.Trace), in)
	}
	_, err := NormalizeUpdate(Done, Update{Trace: json.RawMessage(`{"a":`)})
	assert.ErrorIs(t, err, ErrInvalid)
}

func TestMemoryMaxFinished(t *testing.T) {
	ctx := context.Background()
	s := NewMemory(WithMaxFinished(3))
	finish := func(id string) {
		require.NoError(t, s.Transition(ctx, id, Processing, Update{}))
		require.NoError(t, s.Transition(ctx, id, Done, Update{}))
	}
	put := func(i int) string {
		m := message.New("application/json", []byte(`{}`), nil)
		m.ID = fmt.Sprintf("m%d", i)
		require.NoError(t, s.Put(ctx, m))
		return m.ID
	}
	for i := range 4 {
		id := put(i)
		if i == 1 {
			continue // m1 stays owed: never dropped
		}
		finish(id)
	}
	finish("m0") // replayed: now the newest finished
	finish(put(4))
	finish(put(5))
	n, err := s.Count(ctx, Query{})
	require.NoError(t, err)
	assert.Equal(t, 4, n, "three finished plus the owed one")
	for _, id := range []string{"m0", "m1", "m4", "m5"} {
		_, err := s.Get(ctx, id)
		assert.NoError(t, err, id)
	}
	for _, id := range []string{"m2", "m3"} {
		_, err := s.Get(ctx, id)
		assert.ErrorIs(t, err, ErrNotFound, id)
	}
}
