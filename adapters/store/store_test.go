package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/message"
	flowerrors "github.com/svcflow/svcflow/errors"
)

func TestStateValid(t *testing.T) {
	for _, s := range States {
		assert.True(t, s.Valid(), s)
	}
	for _, s := range []State{"", "PENDING", "done ", "failed"} {
		assert.False(t, s.Valid(), s)
	}
}

func TestOpError(t *testing.T) {
	tests := []struct {
		err  *OpError
		want string
	}{
		{&OpError{Store: "sqlite", Op: "transition", ID: "abc", To: Done, Err: ErrNotFound}, `store sqlite: transition "abc" to done: message not found`},
		{&OpError{Store: "file", Op: "put", ID: "a\"b", Err: ErrExists}, `store file: put "a\"b": message already stored`},
		{&OpError{Store: "sqlite", Op: "begin", ID: "x", Err: ErrExists}, `store sqlite: begin "x": message already stored`},
		{&OpError{Store: "memory", Op: "get", Err: ErrNotFound}, `store memory: get "": message not found`},
		{&OpError{Store: "memory", Op: "search", Err: ErrClosed}, `store memory: search: store closed`},
		{&OpError{Store: "file", Op: "close"}, `store file: close`},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.err.Error())
	}
	cause := errors.New("disk on fire")
	var err error = &OpError{Store: "file", Op: "put", ID: "x", Err: fmt.Errorf("write: %w", cause)}
	assert.ErrorIs(t, err, cause)
	var oe *OpError
	require.ErrorAs(t, fmt.Errorf("wrapped: %w", err), &oe)
	assert.Equal(t, "x", oe.ID)
}

func TestRecordClone(t *testing.T) {
	assert.Nil(t, (*Record)(nil).Clone())
	r := &Record{
		Message: &message.Message{ID: "a", Context: map[string]any{"m": map[string]any{"l": []any{1.0}}}},
		State:   Rejected,
		Outcome: flowerrors.KindStop,
		Reason:  "no items",
		History: []Transition{{State: Pending}, {State: Rejected, Outcome: flowerrors.KindStop, Reason: "no items"}},
	}
	c := r.Clone()
	assert.Equal(t, r, c)
	c.History[0].State = Error
	c.Message.Context["m"].(map[string]any)["l"].([]any)[0] = 2.0
	assert.Equal(t, Pending, r.History[0].State)
	assert.Equal(t, 1.0, r.Message.Context["m"].(map[string]any)["l"].([]any)[0])
	assert.Nil(t, (&Record{}).Clone().Message)
}

func TestKnownOutcome(t *testing.T) {
	for _, tt := range []struct {
		state   State
		outcome flowerrors.Kind
		known   bool
	}{
		{Done, flowerrors.KindOK, true},
		{Rejected, flowerrors.KindStop, true},
		{Error, flowerrors.KindRetryExhausted, true},
		{Error, flowerrors.KindPanic, true},
		{Pending, flowerrors.KindOK, false},
		{Processing, flowerrors.KindOK, false},
		{Rejected, flowerrors.KindOK, false}, // finished before outcomes were kept
		{Error, flowerrors.KindOK, false},
	} {
		r := &Record{State: tt.state, Outcome: tt.outcome}
		k, ok := r.KnownOutcome()
		assert.Equal(t, tt.known, ok, "%s %s", tt.state, tt.outcome)
		assert.Equal(t, tt.outcome, k)
		k, ok = Transition{State: tt.state, Outcome: tt.outcome}.KnownOutcome()
		assert.Equal(t, tt.known, ok, "%s %s", tt.state, tt.outcome)
		assert.Equal(t, tt.outcome, k)
	}
}

func TestNormalize(t *testing.T) {
	local := time.FixedZone("x", 2*3600)
	m := &message.Message{
		ID:      "n",
		Time:    time.Date(2024, 1, 1, 2, 0, 0, 5, local),
		Payload: []byte("body"),
		Meta:    map[string]string{"k": "v"},
		Context: map[string]any{"n": 1, "list": []string{"a"}},
		Trace:   json.RawMessage(`[ {"step": "a"} ]`),
	}
	n, err := Normalize(m)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2024, 1, 1, 0, 0, 0, 5, time.UTC), n.Message.Time)
	assert.Nil(t, n.Message.Context, "the context is in n.Context")
	assert.JSONEq(t, `{"list":["a"],"n":1}`, string(n.Context))
	assert.Equal(t, json.RawMessage(`[{"step":"a"}]`), n.Message.Trace)

	// n is a copy: changing m changes nothing in it.
	m.Payload[0] = 'X'
	m.Meta["k"] = "changed"
	m.Trace[1] = '!'
	assert.Equal(t, []byte("body"), n.Message.Payload)
	assert.Equal(t, map[string]string{"k": "v"}, n.Message.Meta)
	assert.Equal(t, json.RawMessage(`[{"step":"a"}]`), n.Message.Trace)

	// A compact trace is copied too.
	m.Trace = json.RawMessage(`[1]`)
	n, err = Normalize(m)
	require.NoError(t, err)
	m.Trace[1] = '2'
	assert.Equal(t, json.RawMessage(`[1]`), n.Message.Trace)

	n, err = Normalize(&message.Message{ID: "none", Time: base})
	require.NoError(t, err)
	assert.Nil(t, n.Context)
	assert.Nil(t, n.Message.Trace)

	for name, m := range map[string]*message.Message{
		"nil":         nil,
		"empty id":    {Time: base},
		"non-utf8 id": {ID: "\xff", Time: base},
		"time":        {ID: "t", Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		"bad trace":   {ID: "tr", Time: base, Trace: json.RawMessage(`{`)},
		"bad context": {ID: "c", Time: base, Context: map[string]any{"ch": make(chan int)}},
	} {
		_, err := Normalize(m)
		assert.ErrorIs(t, err, ErrInvalid, name)
	}
}

func TestNormalizeUpdate(t *testing.T) {
	u := Update{Err: "boom", Context: map[string]any{"a": 1}, Trace: json.RawMessage("[ 1 ]")}
	n, err := NormalizeUpdate(Error, u)
	require.NoError(t, err)
	assert.Equal(t, NormalizedUpdate{Err: "boom", Context: []byte(`{"a":1}`), Trace: json.RawMessage(`[1]`)}, n)

	n, err = NormalizeUpdate(Done, Update{})
	require.NoError(t, err)
	assert.Equal(t, NormalizedUpdate{}, n)

	n, err = NormalizeUpdate(Rejected, Update{Err: "stop: no items", Outcome: flowerrors.KindStop, Reason: "no items"})
	require.NoError(t, err)
	assert.Equal(t, NormalizedUpdate{Err: "stop: no items", Outcome: flowerrors.KindStop, Reason: "no items"}, n)

	for name, tc := range map[string]struct {
		to State
		u  Update
	}{
		"state":   {"finished", Update{}},
		"trace":   {Done, Update{Trace: json.RawMessage(`nope`)}},
		"context": {Done, Update{Context: map[string]any{"f": func() {}}}},
		"outcome": {Done, Update{Outcome: flowerrors.Kind(-1)}},
		"kind":    {Error, Update{Outcome: flowerrors.Kind(len(flowerrors.Kinds()))}},
	} {
		_, err := NormalizeUpdate(tc.to, tc.u)
		assert.ErrorIs(t, err, ErrInvalid, name)
	}
}

func TestQueryValidate(t *testing.T) {
	for _, q := range []Query{{}, {States: States, Limit: 1, Offset: 2}} {
		assert.NoError(t, q.Validate())
	}
	for name, q := range map[string]Query{
		"bad state":       {States: []State{Done, "zzz"}},
		"negative limit":  {Limit: -1},
		"negative offset": {Offset: -1},
	} {
		assert.ErrorIs(t, q.Validate(), ErrInvalid, name)
	}
}

func TestQuerySelectAndCount(t *testing.T) {
	entries := []*IndexEntry{
		{ID: "b", Time: base, State: Done, Meta: map[string]string{"src": "http"}},
		{ID: "a", Time: base, State: Pending},
		{ID: "c", Time: base.Add(time.Second), State: Done, Meta: map[string]string{"src": "http"}},
		{ID: "d", Time: base.Add(-time.Second), State: Error, Meta: map[string]string{"src": "cron"}},
	}
	all := slices.Values(entries)
	idsOf := func(es []*IndexEntry) []string {
		out := []string{}
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	for _, tt := range []struct {
		name  string
		q     Query
		want  []string
		count int
	}{
		{"all by time then id", Query{}, []string{"d", "a", "b", "c"}, 4},
		{"desc", Query{Desc: true}, []string{"c", "b", "a", "d"}, 4},
		{"state", Query{States: []State{Done}}, []string{"b", "c"}, 2},
		{"meta", Query{Meta: map[string]string{"src": "http"}, Desc: true}, []string{"c", "b"}, 2},
		{"since until", Query{Since: base, Until: base.Add(time.Second)}, []string{"a", "b"}, 2},
		{"offset limit", Query{Offset: 1, Limit: 2}, []string{"a", "b"}, 4},
		{"offset past end", Query{Offset: 4}, []string{}, 4},
	} {
		assert.Equal(t, tt.want, idsOf(tt.q.Select(all)), tt.name)
		assert.Equal(t, tt.count, tt.q.Count(all), tt.name)
	}
	assert.Equal(t, []string{"b", "a", "c", "d"}, idsOf(entries), "Select leaves its input as it was")
}
