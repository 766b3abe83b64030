// Package storetest checks that a [store.Store] keeps the contract that
// package store documents: states and history, outcomes and reasons, the
// errors, search order, normalization, copies, concurrent use, Recover,
// Close, and Probe for a store that implements store.Prober. Every store of
// this module runs it, and so can a store written elsewhere:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := mystore.Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// A store that keeps messages across a restart also runs [RunDurable],
// and [RunKill], which kills a process writing to it 20 times and checks
// that every write it acknowledged is there.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	flowerrors "github.com/svcflow/svcflow/errors"
)

// base is the time of the messages the suite stores.
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

func ids(recs []*store.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Message.ID
	}
	return out
}

func states(h []store.Transition) []store.State {
	out := make([]store.State, len(h))
	for i, t := range h {
		out[i] = t.State
	}
	return out
}

// checkOpError checks that err is an *store.OpError for operation op on
// message id, naming its store.
func checkOpError(t *testing.T, err error, op, id string) {
	t.Helper()
	var oe *store.OpError
	if assert.ErrorAs(t, err, &oe) {
		assert.NotEmpty(t, oe.Store, "the store is named")
		assert.Equal(t, op, oe.Op)
		assert.Equal(t, id, oe.ID)
	}
}

// Run checks, each in a subtest, the behaviour every store.Store must
// have. open must return a new, empty store each time it is called; Run
// closes it at the end of the subtest that opened it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	newStore := func(t *testing.T) store.Store {
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
		assert.Equal(t, store.Pending, rec.State)
		assert.Empty(t, rec.Err)
		assert.Zero(t, rec.Outcome)
		assert.Empty(t, rec.Reason)
		assert.Zero(t, rec.Attempts)
		require.Len(t, rec.History, 1)
		assert.Equal(t, store.Pending, rec.History[0].State)
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
		assert.Equal(t, store.Processing, rec.State)
		assert.Equal(t, 1, rec.Attempts)
		require.Len(t, rec.History, 2)
		assert.Equal(t, store.Pending, rec.History[0].State)
		assert.Equal(t, store.Processing, rec.History[1].State)
		n, err := s.Count(ctx, store.Query{States: []store.State{store.Processing}})
		require.NoError(t, err)
		assert.Equal(t, 1, n, "searchable by its new state")
		err = s.Begin(ctx, m)
		assert.ErrorIs(t, err, store.ErrExists)
		checkOpError(t, err, "begin", m.ID)
		assert.Contains(t, err.Error(), fmt.Sprintf("begin %q", m.ID))
		require.NoError(t, s.Transition(ctx, m.ID, store.Done, store.Update{Context: map[string]any{"x": 1.0}}))
		rec, err = s.Get(ctx, m.ID)
		require.NoError(t, err)
		assert.Equal(t, store.Done, rec.State)
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

	t.Run("contexts come back as a JSON round trip gives them", func(t *testing.T) {
		s := newStore(t)
		type item struct {
			SKU string  `json:"sku"`
			Qty float32 `json:"qty"`
		}
		c := map[string]any{
			"s": "text", "b": true, "f": 2.5, "i": 7, "i64": int64(1) << 60, "u8": uint8(3),
			"nil": nil, "list": []any{1, "a", []any{2.5}}, "nested": map[string]any{"k": []any{map[string]any{"x": 1}}},
			"typed": []item{{SKU: "a", Qty: 0.1}}, "ints": []int{1, 2}, "bad": "\xff",
			"big": json.Number("12345678901234567891"), "long": json.Number("0.10000000000000000001"),
		}
		data, err := json.Marshal(c)
		require.NoError(t, err)
		want, err := store.DecodeContext(data)
		require.NoError(t, err)
		// Numbers a float64 would not write back as they were come back
		// as their text.
		assert.Equal(t, json.Number("12345678901234567891"), want["big"])
		assert.Equal(t, json.Number("1152921504606846976"), want["i64"])
		assert.Equal(t, json.Number("0.10000000000000000001"), want["long"])

		m := msg("rt", 0, nil)
		m.Context = c
		require.NoError(t, s.Put(ctx, m))
		rec, err := s.Get(ctx, "rt")
		require.NoError(t, err)
		assert.Equal(t, want, rec.Message.Context, "put")

		require.NoError(t, s.Transition(ctx, "rt", store.Done, store.Update{Context: c}))
		rec, err = s.Get(ctx, "rt")
		require.NoError(t, err)
		assert.Equal(t, want, rec.Message.Context, "transition")
	})

	t.Run("put and begin reject invalid messages", func(t *testing.T) {
		s := newStore(t)
		tests := map[string]*message.Message{
			"nil":          nil,
			"empty id":     {Time: base},
			"non-utf8 id":  {ID: "\xff", Time: base},
			"time":         {ID: "t", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
			"negative":     {ID: "neg", Time: time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC)},
			"bad trace":    {ID: "tr", Time: base, Trace: json.RawMessage(`{`)},
			"bad context":  {ID: "c", Time: base, Context: map[string]any{"ch": make(chan int)}},
			"func in ctx":  {ID: "f", Time: base, Context: map[string]any{"f": func() {}}},
			"trace spaces": {ID: "ts", Time: base, Trace: json.RawMessage(` `)},
		}
		for name, m := range tests {
			var id string
			if m != nil {
				id = m.ID
			}
			err := s.Put(ctx, m)
			assert.ErrorIs(t, err, store.ErrInvalid, name)
			checkOpError(t, err, "put", id)
			err = s.Begin(ctx, m)
			assert.ErrorIs(t, err, store.ErrInvalid, name)
			checkOpError(t, err, "begin", id)
		}
		n, err := s.Count(ctx, store.Query{})
		require.NoError(t, err)
		assert.Zero(t, n)
	})

	t.Run("put existing id", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Put(ctx, msg("dup", 0, nil)))
		require.NoError(t, s.Transition(ctx, "dup", store.Processing, store.Update{}))
		err := s.Put(ctx, msg("dup", time.Hour, nil))
		require.ErrorIs(t, err, store.ErrExists)
		checkOpError(t, err, "put", "dup")
		assert.Contains(t, err.Error(), `put "dup"`)

		rec, err := s.Get(ctx, "dup")
		require.NoError(t, err)
		assert.Equal(t, base, rec.Message.Time, "the first message is kept")
		assert.Equal(t, store.Processing, rec.State)
	})

	t.Run("transitions record history and attempts", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Put(ctx, msg("a", 0, nil)))
		steps := []struct {
			to       store.State
			u        store.Update
			attempts int
		}{
			{store.Processing, store.Update{}, 1},
			{store.Error, store.Update{Err: "boom", Outcome: flowerrors.KindFailed, Context: map[string]any{"step": "one"}, Trace: json.RawMessage(`["one"]`)}, 1},
			{store.Processing, store.Update{}, 2},
			{store.Done, store.Update{Outcome: flowerrors.KindOK, Context: map[string]any{"step": "two", "total": 3.5}, Trace: json.RawMessage(`["one","two"]`)}, 2},
		}
		var last time.Time
		for i, st := range steps {
			require.NoError(t, s.Transition(ctx, "a", st.to, st.u), i)
			rec, err := s.Get(ctx, "a")
			require.NoError(t, err)
			assert.Equal(t, st.to, rec.State, i)
			assert.Equal(t, st.attempts, rec.Attempts, i)
			assert.Equal(t, st.u.Err, rec.Err, i)
			assert.Equal(t, st.u.Outcome, rec.Outcome, i)
			require.Len(t, rec.History, i+2)
			assert.Equal(t, store.Transition{State: st.to, At: rec.Updated, Err: st.u.Err, Outcome: st.u.Outcome}, rec.History[i+1])
			assert.False(t, rec.Updated.Before(last))
			last = rec.Updated
		}
		rec, err := s.Get(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, []store.State{store.Pending, store.Processing, store.Error, store.Processing, store.Done}, states(rec.History))
		assert.Equal(t, "boom", rec.History[2].Err)
		assert.Equal(t, flowerrors.KindFailed, rec.History[2].Outcome)
		assert.Equal(t, map[string]any{"step": "two", "total": 3.5}, rec.Message.Context)
		assert.JSONEq(t, `["one","two"]`, string(rec.Message.Trace))
		assert.Equal(t, []byte(`{"id":"a"}`), rec.Message.Payload, "payload untouched")

		// A transition without context or trace keeps the stored ones;
		// replaying a finished message counts another attempt.
		require.NoError(t, s.Transition(ctx, "a", store.Processing, store.Update{}))
		rec, err = s.Get(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, 3, rec.Attempts)
		assert.Empty(t, rec.Err, "the latest transition's error, none")
		assert.Equal(t, map[string]any{"step": "two", "total": 3.5}, rec.Message.Context)
		assert.JSONEq(t, `["one","two"]`, string(rec.Message.Trace))

		// An empty (non-nil) context replaces the stored one.
		require.NoError(t, s.Transition(ctx, "a", store.Done, store.Update{Context: map[string]any{}}))
		rec, err = s.Get(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, map[string]any{}, rec.Message.Context)
	})

	t.Run("outcomes and reasons are kept as data", func(t *testing.T) {
		s := newStore(t)
		// A reason is text, kept whole: it may look like an error's text.
		const reason = `field "kind": stop: is not allowed (ünïcode, 'quotes', \ and ;)`
		stopErr := `flow "orders": step "validate": stop: ` + reason
		require.NoError(t, s.Begin(ctx, msg("rej", 0, map[string]string{"src": "http"})))
		require.NoError(t, s.Transition(ctx, "rej", store.Rejected, store.Update{Err: stopErr, Outcome: flowerrors.KindStop, Reason: reason}))
		check := func(rec *store.Record, how string) {
			t.Helper()
			assert.Equal(t, store.Rejected, rec.State, how)
			assert.Equal(t, stopErr, rec.Err, how)
			assert.Equal(t, flowerrors.KindStop, rec.Outcome, how)
			assert.Equal(t, reason, rec.Reason, how)
			require.Len(t, rec.History, 3, how)
			for _, h := range rec.History[:2] {
				assert.Zero(t, h.Outcome, how)
				assert.Empty(t, h.Reason, how)
			}
			assert.Equal(t, store.Transition{State: store.Rejected, At: rec.Updated, Err: stopErr, Outcome: flowerrors.KindStop, Reason: reason}, rec.History[2], how)
		}
		rec, err := s.Get(ctx, "rej")
		require.NoError(t, err)
		check(rec, "get")
		recs, err := s.Search(ctx, store.Query{States: []store.State{store.Rejected}, Meta: map[string]string{"src": "http"}})
		require.NoError(t, err)
		require.Len(t, recs, 1)
		check(recs[0], "search")
		assert.Equal(t, rec, recs[0])

		// Replaying: the record's outcome and reason are the latest
		// transition's, none while it runs; the history keeps the first
		// run's.
		require.NoError(t, s.Transition(ctx, "rej", store.Processing, store.Update{}))
		rec, err = s.Get(ctx, "rej")
		require.NoError(t, err)
		assert.Zero(t, rec.Outcome)
		assert.Empty(t, rec.Reason)
		assert.Equal(t, reason, rec.History[2].Reason)
		require.NoError(t, s.Transition(ctx, "rej", store.Error, store.Update{Err: "retries exhausted after 3 attempts: busy", Outcome: flowerrors.KindRetryExhausted}))
		rec, err = s.Get(ctx, "rej")
		require.NoError(t, err)
		assert.Equal(t, flowerrors.KindRetryExhausted, rec.Outcome)
		assert.Empty(t, rec.Reason)
		want := []store.Transition{
			{State: store.Pending}, {State: store.Processing},
			{State: store.Rejected, Err: stopErr, Outcome: flowerrors.KindStop, Reason: reason},
			{State: store.Processing},
			{State: store.Error, Err: "retries exhausted after 3 attempts: busy", Outcome: flowerrors.KindRetryExhausted},
		}
		for i := range rec.History {
			rec.History[i].At = time.Time{}
		}
		assert.Equal(t, want, rec.History)

		// Every kind round-trips, in Get and in Search.
		kinds := flowerrors.Kinds()
		for i, k := range kinds {
			id := fmt.Sprintf("kind-%02d", i)
			require.NoError(t, s.Put(ctx, msg(id, time.Duration(i)*time.Second, map[string]string{"kinds": "all"})))
			require.NoError(t, s.Transition(ctx, id, store.Error, store.Update{Err: k.String(), Outcome: k, Reason: "r-" + k.String()}), k)
			rec, err := s.Get(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, k, rec.Outcome, k)
			assert.Equal(t, "r-"+k.String(), rec.Reason, k)
		}
		recs, err = s.Search(ctx, store.Query{Meta: map[string]string{"kinds": "all"}})
		require.NoError(t, err)
		require.Len(t, recs, len(kinds))
		for i, r := range recs {
			assert.Equal(t, kinds[i], r.Outcome, r.Message.ID)
			assert.Equal(t, "r-"+kinds[i].String(), r.Reason, r.Message.ID)
			assert.Equal(t, kinds[i], r.History[len(r.History)-1].Outcome, r.Message.ID)
			assert.Equal(t, "r-"+kinds[i].String(), r.History[len(r.History)-1].Reason, r.Message.ID)
		}
	})

	t.Run("any state may follow any other", func(t *testing.T) {
		s := newStore(t)
		for _, from := range store.States {
			for _, to := range store.States {
				id := fmt.Sprintf("%s-%s", from, to)
				require.NoError(t, s.Put(ctx, msg(id, 0, nil)))
				require.NoError(t, s.Transition(ctx, id, from, store.Update{}), id)
				require.NoError(t, s.Transition(ctx, id, to, store.Update{Err: "e"}), id)
				rec, err := s.Get(ctx, id)
				require.NoError(t, err)
				assert.Equal(t, to, rec.State, id)
				assert.Equal(t, "e", rec.Err, id)
				assert.Equal(t, []store.State{store.Pending, from, to}, states(rec.History), id)
				want := 0
				for _, st := range []store.State{from, to} {
					if st == store.Processing {
						want++
					}
				}
				assert.Equal(t, want, rec.Attempts, id)
			}
		}
	})

	t.Run("transition rejects bad arguments", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Put(ctx, msg("a", 0, nil)))
		for name, tc := range map[string]struct {
			to store.State
			u  store.Update
		}{
			"unknown state": {"finished", store.Update{}},
			"empty state":   {"", store.Update{}},
			"bad trace":     {store.Done, store.Update{Trace: json.RawMessage(`nope`)}},
			"bad context":   {store.Done, store.Update{Context: map[string]any{"c": make(chan int)}}},
			"bad outcome":   {store.Error, store.Update{Err: "e", Outcome: flowerrors.Kind(-1)}},
			"no such kind":  {store.Error, store.Update{Outcome: flowerrors.Kind(len(flowerrors.Kinds()))}},
		} {
			err := s.Transition(ctx, "a", tc.to, tc.u)
			assert.ErrorIs(t, err, store.ErrInvalid, name)
			checkOpError(t, err, "transition", "a")
		}
		rec, err := s.Get(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, store.Pending, rec.State)
		assert.Len(t, rec.History, 1)
	})

	t.Run("not found", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Get(ctx, "nope")
		require.ErrorIs(t, err, store.ErrNotFound)
		checkOpError(t, err, "get", "nope")
		assert.Regexp(t, `^store [a-z]+: get "nope": message not found$`, err.Error())

		err = s.Transition(ctx, "nope", store.Done, store.Update{})
		require.ErrorIs(t, err, store.ErrNotFound)
		var oe *store.OpError
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, store.OpError{Store: oe.Store, Op: "transition", ID: "nope", To: store.Done, Err: store.ErrNotFound}, *oe)
		assert.Regexp(t, `^store [a-z]+: transition "nope" to done: message not found$`, err.Error())
	})

	t.Run("search and count", func(t *testing.T) {
		s := newStore(t)
		weird := `we"ird\key.x[0] <&>`
		seed := []struct {
			m     *message.Message
			state store.State
		}{
			{msg("m0", 0, map[string]string{"src": "http", "path": "/a"}), store.Pending},
			{msg("m1", time.Minute, map[string]string{"src": "http", "path": "/b"}), store.Processing},
			{msg("m2", 2*time.Minute, map[string]string{"src": "cron"}), store.Done},
			{msg("m3", 3*time.Minute, map[string]string{"src": "file", "file.name": "x.csv", weird: "v"}), store.Error},
			{msg("m5", 4*time.Minute, map[string]string{"src": "cron"}), store.Done},
			{msg("m4", 4*time.Minute, map[string]string{"src": "http", "path": "/a"}), store.Rejected},
		}
		for _, sd := range seed {
			require.NoError(t, s.Put(ctx, sd.m))
			if sd.state != store.Pending {
				require.NoError(t, s.Transition(ctx, sd.m.ID, sd.state, store.Update{}))
			}
		}
		all := []string{"m0", "m1", "m2", "m3", "m4", "m5"}
		type Q = store.Query
		type S = []store.State
		tests := []struct {
			name  string
			q     Q
			want  []string
			count int // -1: len(want)
		}{
			{"all", Q{}, all, -1},
			{"desc", Q{Desc: true}, []string{"m5", "m4", "m3", "m2", "m1", "m0"}, -1},
			{"one state", Q{States: S{store.Done}}, []string{"m2", "m5"}, -1},
			{"two states", Q{States: S{store.Processing, store.Pending}}, []string{"m0", "m1"}, -1},
			{"no match state", Q{States: S{store.Pending, store.Error, store.Rejected}, Meta: map[string]string{"src": "cron"}}, []string{}, -1},
			{"since", Q{Since: base.Add(2 * time.Minute)}, []string{"m2", "m3", "m4", "m5"}, -1},
			{"until is exclusive", Q{Until: base.Add(2 * time.Minute)}, []string{"m0", "m1"}, -1},
			{"range", Q{Since: base.Add(time.Minute), Until: base.Add(4 * time.Minute)}, []string{"m1", "m2", "m3"}, -1},
			{"range in other zone", Q{Since: base.Add(time.Minute).In(time.FixedZone("y", -5*3600)), Until: base.Add(2*time.Minute + time.Nanosecond)}, []string{"m1", "m2"}, -1},
			{"empty range", Q{Since: base.Add(3 * time.Minute), Until: base.Add(time.Minute)}, []string{}, -1},
			{"far future since", Q{Since: time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{}, -1},
			{"far future until", Q{Until: time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC)}, all, -1},
			{"far past until", Q{Until: time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{}, -1},
			{"meta", Q{Meta: map[string]string{"src": "http"}}, []string{"m0", "m1", "m4"}, -1},
			{"meta all must match", Q{Meta: map[string]string{"src": "http", "path": "/a"}}, []string{"m0", "m4"}, -1},
			{"meta missing key is no match", Q{Meta: map[string]string{"path": ""}}, []string{}, -1},
			{"meta dotted key", Q{Meta: map[string]string{"file.name": "x.csv"}}, []string{"m3"}, -1},
			{"meta weird key", Q{Meta: map[string]string{weird: "v"}}, []string{"m3"}, -1},
			{"meta no match", Q{Meta: map[string]string{"src": "nats"}}, []string{}, -1},
			{"id contains", Q{IDContains: "3"}, []string{"m3"}, -1},
			{"id contains prefix", Q{IDContains: "m", Desc: true, Limit: 2}, []string{"m5", "m4"}, 6},
			{"id contains is case-sensitive", Q{IDContains: "M3"}, []string{}, -1},
			{"id contains no match", Q{IDContains: "x"}, []string{}, -1},
			{"id contains with state", Q{IDContains: "m", States: S{store.Done}}, []string{"m2", "m5"}, -1},
			{"limit", Q{Limit: 2}, []string{"m0", "m1"}, 6},
			{"offset", Q{Offset: 4}, []string{"m4", "m5"}, 6},
			{"limit offset desc", Q{Limit: 2, Offset: 1, Desc: true}, []string{"m4", "m3"}, 6},
			{"offset past end", Q{Offset: 10}, []string{}, 6},
			{"combined", Q{States: S{store.Done}, Meta: map[string]string{"src": "cron"}, Desc: true, Limit: 1}, []string{"m5"}, 2},
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

		for name, q := range map[string]store.Query{
			"bad state":       {States: []store.State{"zzz"}},
			"negative limit":  {Limit: -1},
			"negative offset": {Offset: -1},
		} {
			_, err := s.Search(ctx, q)
			assert.ErrorIs(t, err, store.ErrInvalid, name)
			checkOpError(t, err, "search", "")
			_, err = s.Count(ctx, q)
			assert.ErrorIs(t, err, store.ErrInvalid, name)
			checkOpError(t, err, "count", "")
		}
	})

	t.Run("stores keep copies of what they are given", func(t *testing.T) {
		s := newStore(t)
		want := func(id string) *message.Message {
			m := msg(id, 0, map[string]string{"k": "v"})
			m.Context = map[string]any{"nested": map[string]any{"x": "y"}, "list": []any{"a"}}
			m.Trace = json.RawMessage(`[1]`)
			return m
		}
		// The caller reuses everything once the call returns.
		reuse := func(m *message.Message) {
			m.ID = "reused"
			m.Time = m.Time.Add(time.Hour)
			m.ContentType = "text/reused"
			m.Payload[0] = 'X'
			m.Meta["k"] = "changed"
			m.Meta["new"] = "key"
			m.Context["nested"].(map[string]any)["x"] = "changed"
			m.Context["list"].([]any)[0] = "changed"
			m.Context["new"] = "key"
			m.Trace[1] = '2'
		}
		for op, call := range map[string]func(context.Context, *message.Message) error{"put": s.Put, "begin": s.Begin} {
			id := "given-" + op
			m := want(id)
			require.NoError(t, call(ctx, m))
			reuse(m)
			rec, err := s.Get(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, want(id), rec.Message, op)
		}

		// An update's context and trace are copied too.
		u := store.Update{Err: "e", Context: map[string]any{"k": "v", "list": []any{"a"}}, Trace: json.RawMessage(`[1]`)}
		require.NoError(t, s.Transition(ctx, "given-put", store.Error, u))
		u.Context["k"] = "changed"
		u.Context["list"].([]any)[0] = "changed"
		u.Trace[1] = '2'
		rec, err := s.Get(ctx, "given-put")
		require.NoError(t, err)
		assert.Equal(t, map[string]any{"k": "v", "list": []any{"a"}}, rec.Message.Context)
		assert.Equal(t, json.RawMessage(`[1]`), rec.Message.Trace)
	})

	t.Run("returned records may be modified freely", func(t *testing.T) {
		s := newStore(t)
		m := msg("c", 0, map[string]string{"k": "v"})
		m.Context = map[string]any{"nested": map[string]any{"x": "y"}, "list": []any{"a"}}
		m.Trace = json.RawMessage(`[1]`)
		require.NoError(t, s.Begin(ctx, m))

		mutate := func(r *store.Record) {
			r.State = store.Error
			r.Err = "mutated"
			r.Outcome = flowerrors.KindFatal
			r.Reason = "mutated"
			r.Attempts = 99
			r.Updated = time.Time{}
			r.History[0].State = store.Done
			r.History[0].Outcome = flowerrors.KindPanic
			r.History[0].Reason = "mutated"
			r.History = append(r.History, store.Transition{State: store.Error})
			r.Message.Payload[0] = 'Y'
			r.Message.Meta["k"] = "mutated"
			r.Message.Meta["new"] = "key"
			r.Message.Context["nested"].(map[string]any)["x"] = "mutated"
			r.Message.Context["list"].([]any)[0] = "mutated"
			r.Message.Context["new"] = "key"
			r.Message.Trace[1] = '9'
			r.Message.ID = "other"
			r.Message.Time = time.Time{}
			r.Message.ContentType = "mutated"
		}
		first, err := s.Get(ctx, "c")
		require.NoError(t, err)
		check := func(how string) {
			t.Helper()
			rec, err := s.Get(ctx, "c")
			require.NoError(t, err)
			assert.Equal(t, first, rec, "after changing a record returned by %s", how)
		}
		rec, err := s.Get(ctx, "c")
		require.NoError(t, err)
		mutate(rec)
		check("Get")
		recs, err := s.Search(ctx, store.Query{})
		require.NoError(t, err)
		require.Len(t, recs, 1)
		mutate(recs[0])
		check("Search")
		recs, err = store.Recover(ctx, s)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		mutate(recs[0])
		check("Recover")
		mutate(first)
		rec, err = s.Get(ctx, "c")
		require.NoError(t, err)
		assert.Equal(t, store.Processing, rec.State)
		assert.Equal(t, []byte(`{"id":"c"}`), rec.Message.Payload)
		assert.Equal(t, map[string]string{"k": "v"}, rec.Message.Meta)
		assert.Equal(t, map[string]any{"nested": map[string]any{"x": "y"}, "list": []any{"a"}}, rec.Message.Context)
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
					func() error { return s.Transition(ctx, id, store.Processing, store.Update{}) },
					func() error { _, err := s.Get(ctx, id); return err },
					func() error {
						_, err := s.Search(ctx, store.Query{Meta: map[string]string{"g": "1"}, Limit: 3})
						return err
					},
					func() error {
						return s.Transition(ctx, id, store.Done, store.Update{Context: map[string]any{"i": float64(i)}, Trace: json.RawMessage(`[]`)})
					},
					func() error { _, err := s.Count(ctx, store.Query{States: []store.State{store.Done}}); return err },
				}
				for _, step := range steps {
					if err := step(); err != nil {
						errs <- err
						return
					}
				}
				// Every goroutine also races for one shared ID.
				if err := s.Put(ctx, msg("shared", 0, nil)); err != nil && !errors.Is(err, store.ErrExists) {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		done, err := s.Search(ctx, store.Query{States: []store.State{store.Done}})
		require.NoError(t, err)
		require.Len(t, done, n)
		for i, r := range done {
			assert.Equal(t, fmt.Sprintf("c%02d", i), r.Message.ID)
			assert.Equal(t, 1, r.Attempts)
			assert.Equal(t, []store.State{store.Pending, store.Processing, store.Done}, states(r.History))
			assert.Equal(t, map[string]any{"i": float64(i)}, r.Message.Context)
		}
		total, err := s.Count(ctx, store.Query{})
		require.NoError(t, err)
		assert.Equal(t, n+1, total)
	})

	t.Run("recover", func(t *testing.T) {
		s := newStore(t)
		recs, err := store.Recover(ctx, s)
		require.NoError(t, err)
		assert.Empty(t, recs)

		for i, st := range []store.State{store.Done, store.Processing, store.Error, store.Pending, store.Rejected, store.Processing} {
			id := fmt.Sprintf("r%d", i)
			// Later IDs get earlier times: Recover orders by time.
			require.NoError(t, s.Put(ctx, msg(id, time.Duration(10-i)*time.Minute, nil)))
			if st != store.Pending {
				require.NoError(t, s.Transition(ctx, id, st, store.Update{}))
			}
		}
		recs, err = store.Recover(ctx, s)
		require.NoError(t, err)
		assert.Equal(t, []string{"r5", "r3", "r1"}, ids(recs))
	})

	t.Run("dead letters are kept apart", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Begin(ctx, msg("dl", 0, map[string]string{"src": "http"})))
		require.NoError(t, s.Transition(ctx, "dl", store.Dead, store.Update{Err: "dead-lettered after 5 deliveries: busy", Outcome: flowerrors.KindRetryExhausted}))
		require.NoError(t, s.Begin(ctx, msg("poison", time.Minute, nil)))
		require.NoError(t, s.Transition(ctx, "poison", store.Dead, store.Update{Err: "gave up after 3 crashed runs", Outcome: flowerrors.KindFatal}))
		require.NoError(t, s.Begin(ctx, msg("err", 2*time.Minute, nil)))
		require.NoError(t, s.Transition(ctx, "err", store.Error, store.Update{Err: "boom", Outcome: flowerrors.KindFailed}))
		rec, err := s.Get(ctx, "dl")
		require.NoError(t, err)
		assert.Equal(t, store.Dead, rec.State)
		assert.Equal(t, flowerrors.KindRetryExhausted, rec.Outcome)
		assert.Equal(t, []store.State{store.Pending, store.Processing, store.Dead}, states(rec.History))
		recs, err := s.Search(ctx, store.Query{States: []store.State{store.Dead}})
		require.NoError(t, err)
		assert.Equal(t, []string{"dl", "poison"}, ids(recs))
		n, err := s.Count(ctx, store.Query{States: []store.State{store.Dead}, Meta: map[string]string{"src": "http"}})
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		recs, err = s.Search(ctx, store.Query{States: []store.State{store.Error}})
		require.NoError(t, err)
		assert.Equal(t, []string{"err"}, ids(recs), "dead is not error")
		recs, err = store.Recover(ctx, s)
		require.NoError(t, err)
		assert.Empty(t, recs, "a dead letter is not owed")
		// Replayed by hand, it leaves the state.
		require.NoError(t, s.Transition(ctx, "dl", store.Processing, store.Update{}))
		require.NoError(t, s.Transition(ctx, "dl", store.Done, store.Update{}))
		n, err = s.Count(ctx, store.Query{States: []store.State{store.Dead}})
		require.NoError(t, err)
		assert.Equal(t, 1, n)
	})

	t.Run("canceled context", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Put(ctx, msg("a", 0, nil)))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		assert.ErrorIs(t, s.Put(cctx, msg("b", 0, nil)), context.Canceled)
		assert.ErrorIs(t, s.Begin(cctx, msg("c", 0, nil)), context.Canceled)
		assert.ErrorIs(t, s.Transition(cctx, "a", store.Done, store.Update{}), context.Canceled)
		_, err := s.Get(cctx, "a")
		assert.ErrorIs(t, err, context.Canceled)
		_, err = s.Search(cctx, store.Query{})
		assert.ErrorIs(t, err, context.Canceled)
		_, err = s.Count(cctx, store.Query{})
		assert.ErrorIs(t, err, context.Canceled)
		rec, err := s.Get(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, store.Pending, rec.State)
		for _, id := range []string{"b", "c"} {
			_, err = s.Get(ctx, id)
			assert.ErrorIs(t, err, store.ErrNotFound)
		}
	})

	t.Run("probe", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		if _, ok := s.(store.Prober); !ok {
			probed, err := store.Probe(ctx, s)
			assert.False(t, probed)
			assert.NoError(t, err)
			t.Skip("the store is not a store.Prober")
		}
		require.NoError(t, s.Put(ctx, msg("a", 0, nil)))
		for range 3 {
			probed, err := store.Probe(ctx, s)
			assert.True(t, probed)
			require.NoError(t, err, "an open store can be written")
		}
		recs, err := s.Search(ctx, store.Query{})
		require.NoError(t, err)
		assert.Equal(t, []string{"a"}, ids(recs), "a probe keeps nothing")
		n, err := s.Count(ctx, store.Query{})
		require.NoError(t, err)
		assert.Equal(t, 1, n)

		canceled, cancel := context.WithCancel(ctx)
		cancel()
		_, err = store.Probe(canceled, s)
		assert.ErrorIs(t, err, context.Canceled)

		require.NoError(t, s.Close())
		_, err = store.Probe(ctx, s)
		assert.ErrorIs(t, err, store.ErrClosed)
		checkOpError(t, err, "probe", "")
	})

	t.Run("closed", func(t *testing.T) {
		s := open(t)
		require.NoError(t, s.Put(ctx, msg("a", 0, nil)))
		require.NoError(t, s.Close())
		require.NoError(t, s.Close(), "closing again is harmless")

		assert.ErrorIs(t, s.Put(ctx, msg("b", 0, nil)), store.ErrClosed)
		assert.ErrorIs(t, s.Begin(ctx, msg("c", 0, nil)), store.ErrClosed)
		err := s.Transition(ctx, "a", store.Done, store.Update{})
		assert.ErrorIs(t, err, store.ErrClosed)
		checkOpError(t, err, "transition", "a")
		_, err = s.Get(ctx, "a")
		assert.ErrorIs(t, err, store.ErrClosed)
		_, err = s.Search(ctx, store.Query{})
		assert.ErrorIs(t, err, store.ErrClosed)
		_, err = s.Count(ctx, store.Query{})
		assert.ErrorIs(t, err, store.ErrClosed)
		_, err = store.Recover(ctx, s)
		assert.ErrorIs(t, err, store.ErrClosed)
		assert.True(t, strings.HasPrefix(err.Error(), "recover: store "), err.Error())
	})
}

// RunDurable checks that a store keeps everything across Close: records,
// states, history, context, trace and its indexes, and that Recover finds
// the messages left unfinished. Each call of open must open the same
// storage (for example a path made once with t.TempDir()), empty at the
// first call; RunDurable closes what it opens.
func RunDurable(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	require.NoError(t, s.Put(ctx, msg("json", 0, map[string]string{"src": "http"})))
	require.NoError(t, s.Put(ctx, &message.Message{ID: "bin", Time: base.Add(time.Second), Payload: []byte{0xff, 0}}))
	require.NoError(t, s.Put(ctx, &message.Message{ID: "Upper/../Case", Time: base.Add(2 * time.Second), Payload: []byte{}}))
	require.NoError(t, s.Put(ctx, message.New("text/plain", []byte("now"), nil)))
	require.NoError(t, s.Begin(ctx, msg("begun", 3*time.Second, nil)))
	require.NoError(t, s.Transition(ctx, "json", store.Processing, store.Update{}))
	require.NoError(t, s.Transition(ctx, "json", store.Error, store.Update{Err: "boom", Outcome: flowerrors.KindFailed, Context: map[string]any{"a": 1.0}, Trace: json.RawMessage(`[{"svc":"x"}]`)}))
	require.NoError(t, s.Transition(ctx, "bin", store.Processing, store.Update{}))
	require.NoError(t, s.Transition(ctx, "bin", store.Done, store.Update{}))
	require.NoError(t, s.Transition(ctx, "Upper/../Case", store.Processing, store.Update{}))
	require.NoError(t, s.Begin(ctx, msg("rejected", 4*time.Second, nil)))
	require.NoError(t, s.Transition(ctx, "rejected", store.Rejected, store.Update{Err: "stop: no items", Outcome: flowerrors.KindStop, Reason: "no items"}))
	require.NoError(t, s.Begin(ctx, msg("dead", 5*time.Second, nil)))
	require.NoError(t, s.Transition(ctx, "dead", store.Dead, store.Update{Err: "gave up after 3 crashed runs", Outcome: flowerrors.KindFatal}))
	before, err := s.Search(ctx, store.Query{})
	require.NoError(t, err)
	require.Len(t, before, 7)
	require.NoError(t, s.Close())

	s = open(t)
	after, err := s.Search(ctx, store.Query{})
	require.NoError(t, err)
	assert.Equal(t, before, after)

	// After a "crash", the unfinished messages are recovered.
	recs, err := store.Recover(ctx, s)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	assert.Equal(t, []string{"Upper/../Case", "begun"}, ids(recs[:2]))
	assert.Equal(t, store.Processing, recs[0].State)
	assert.Equal(t, store.Processing, recs[1].State)
	assert.Equal(t, store.Pending, recs[2].State)

	// The reopened store keeps working and keeps its indexes.
	require.NoError(t, s.Transition(ctx, "json", store.Processing, store.Update{}))
	assert.ErrorIs(t, s.Put(ctx, msg("bin", 0, nil)), store.ErrExists)
	n, err := s.Count(ctx, store.Query{Meta: map[string]string{"src": "http"}, States: []store.State{store.Processing}})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	require.NoError(t, s.Close())

	s = open(t)
	defer func() { assert.NoError(t, s.Close()) }()
	rec, err := s.Get(ctx, "json")
	require.NoError(t, err)
	assert.Equal(t, 2, rec.Attempts)
	assert.Equal(t, []store.State{store.Pending, store.Processing, store.Error, store.Processing}, states(rec.History))
	assert.Equal(t, map[string]any{"a": 1.0}, rec.Message.Context)
	assert.JSONEq(t, `[{"svc":"x"}]`, string(rec.Message.Trace))
	assert.Equal(t, "boom", rec.History[2].Err)
	assert.Equal(t, flowerrors.KindFailed, rec.History[2].Outcome)
	assert.Zero(t, rec.Outcome, "the latest transition, processing, gave none")
	rec, err = s.Get(ctx, "rejected")
	require.NoError(t, err)
	assert.Equal(t, flowerrors.KindStop, rec.Outcome)
	assert.Equal(t, "no items", rec.Reason)
	assert.Equal(t, "no items", rec.History[2].Reason)
}
