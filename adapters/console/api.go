package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/store"
	ferrors "github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// Search limits: a page has DefaultLimit messages unless the query asks
// for another count, at most MaxLimit.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// A bulk replay runs DefaultBulk messages unless its body asks for
// another count, at most MaxBulk.
const (
	DefaultBulk = 100
	MaxBulk     = 1000
)

// maxBody bounds the body of an action.
const maxBody = 1 << 20

// ChannelInfo is a channel as GET /api/channels lists it.
type ChannelInfo struct {
	Name    string   `json:"name"`
	Flow    string   `json:"flow"`
	State   string   `json:"state"`   // stopped, starting, running, restarting, stopping
	Sources []string `json:"sources"` // the sources' names
	// InFlight counts the messages being processed now.
	InFlight int64 `json:"in_flight"`
	// Owed counts the messages a previous process left unfinished whose
	// run again has not ended yet (channel.Status's Recovering).
	Owed int64 `json:"owed"`
	// Waiting counts the stored messages in state waiting (parked at a
	// wait step of a durable channel).
	Waiting int `json:"waiting"`
	// Counts holds the number of stored messages in each state: pending,
	// processing, done, rejected, error, dead, waiting.
	Counts map[store.State]int `json:"counts"`
	// Outcomes counts what became of the messages this process handled
	// (channel.Status's Outcomes: done, rejected, error, left,
	// duplicate, waiting).
	Outcomes   map[string]int64 `json:"outcomes"`
	LastError  string           `json:"last_error,omitempty"`
	StoreError string           `json:"store_error,omitempty"`
	Restarts   int64            `json:"restarts"`
	// CountError is the error of the store when counting failed.
	CountError string `json:"count_error,omitempty"`
}

// MessageSummary is a message as a search lists it.
type MessageSummary struct {
	ID       string            `json:"id"`
	Time     time.Time         `json:"time"`
	State    store.State       `json:"state"`
	Outcome  string            `json:"outcome,omitempty"` // empty when none is known
	Reason   string            `json:"reason,omitempty"`
	Err      string            `json:"error,omitempty"`
	Attempts int               `json:"attempts"`
	Updated  time.Time         `json:"updated"`
	Meta     map[string]string `json:"meta,omitempty"`
}

// SearchResult is the answer of GET /api/channels/{channel}/messages.
type SearchResult struct {
	Total    int              `json:"total"` // matching messages, all pages
	Offset   int              `json:"offset"`
	Limit    int              `json:"limit"`
	Messages []MessageSummary `json:"messages"`
}

// MessageDetail is the answer of GET /api/channels/{channel}/messages/{id}:
// the stored record, the journal of a durable run and its wait, and the
// flow's step names (what a replay can start from).
type MessageDetail struct {
	Channel string `json:"channel"`
	*store.Record
	// Journal lists the completed units of a durable run (absent when the
	// store keeps no journal).
	Journal []store.JournalEntry `json:"journal,omitempty"`
	// Wait is what a waiting message waits for.
	Wait *store.Wait `json:"wait,omitempty"`
	// Steps are the flow's step names, in order.
	Steps []string `json:"steps"`
}

// ActionResult is the answer of a replay or a signal.
type ActionResult struct {
	ID      string         `json:"id"`
	State   store.State    `json:"state"`
	Outcome string         `json:"outcome"`
	Error   string         `json:"error,omitempty"`
	Context map[string]any `json:"context,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// channel finds the channel named in the path, or answers 404.
func (c *Console) channel(w http.ResponseWriter, r *http.Request) (*channel.Channel, bool) {
	name := r.PathValue("channel")
	var names []string
	for _, ch := range c.opts.Channels() {
		if ch.Name() == name {
			return ch, true
		}
		names = append(names, ch.Name())
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no channel %q (channels: %s)", name, strings.Join(names, ", ")))
	return nil, false
}

// info builds a channel's ChannelInfo, counting its stored messages by
// state.
func info(ctx context.Context, ch *channel.Channel) ChannelInfo {
	st := ch.Status()
	ci := ChannelInfo{Name: st.Name, State: st.State, Sources: st.Sources, InFlight: st.InFlight, Owed: st.Recovering,
		Outcomes: st.Outcomes, LastError: st.LastError, StoreError: st.StoreError, Restarts: st.Restarts, Counts: map[store.State]int{}}
	if ci.Sources == nil {
		ci.Sources = []string{}
	}
	if f := ch.Flow(); f != nil {
		ci.Flow = f.Name()
	}
	if s := ch.Store(); s != nil {
		for _, state := range store.States {
			n, err := s.Count(ctx, store.Query{States: []store.State{state}})
			if err != nil {
				ci.CountError = err.Error()
				break
			}
			ci.Counts[state] = n
		}
	}
	ci.Waiting = ci.Counts[store.Waiting]
	return ci
}

func (c *Console) channelInfos(ctx context.Context) []ChannelInfo {
	out := []ChannelInfo{}
	for _, ch := range c.opts.Channels() {
		out = append(out, info(ctx, ch))
	}
	return out
}

func (c *Console) listChannels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, c.channelInfos(r.Context()))
}

func (c *Console) getChannel(w http.ResponseWriter, r *http.Request) {
	ch, ok := c.channel(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, info(r.Context(), ch))
}

// ParseQuery reads a search from URL parameters, as the search endpoint
// does: state (repeated or comma-separated), since and until (RFC 3339),
// meta=KEY=VALUE (repeated), id (text in the ID), limit, offset and
// order (desc, the default: newest first; or asc). Errors name the
// parameter.
func ParseQuery(v url.Values) (store.Query, error) {
	q := store.Query{Desc: true, Limit: DefaultLimit}
	for _, s := range v["state"] {
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			st := store.State(p)
			if !st.Valid() {
				return q, fmt.Errorf("state: unknown state %q (expected one of %s)", p, stateNames())
			}
			q.States = append(q.States, st)
		}
	}
	var err error
	for _, name := range []string{"since", "until"} {
		s := v.Get(name)
		if s == "" {
			continue
		}
		t, perr := time.Parse(time.RFC3339Nano, s)
		if perr != nil {
			return q, fmt.Errorf("%s: %q is not an RFC 3339 time (2026-01-02T15:04:05Z): %w", name, s, perr)
		}
		if name == "since" {
			q.Since = t
		} else {
			q.Until = t
		}
	}
	for _, kv := range v["meta"] {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return q, fmt.Errorf("meta: %q: expected KEY=VALUE", kv)
		}
		if q.Meta == nil {
			q.Meta = map[string]string{}
		}
		q.Meta[k] = val
	}
	q.IDContains = v.Get("id")
	if s := v.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 1 || q.Limit > MaxLimit {
			return q, fmt.Errorf("limit: %q: expected a number from 1 to %d", s, MaxLimit)
		}
	}
	if s := v.Get("offset"); s != "" {
		if q.Offset, err = strconv.Atoi(s); err != nil || q.Offset < 0 {
			return q, fmt.Errorf("offset: %q: expected a number, 0 or more", s)
		}
	}
	switch v.Get("order") {
	case "", "desc":
	case "asc":
		q.Desc = false
	default:
		return q, fmt.Errorf("order: %q: expected asc or desc", v.Get("order"))
	}
	return q, nil
}

func stateNames() string {
	names := make([]string, len(store.States))
	for i, s := range store.States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// search runs q on the channel's store: the page and the total.
func search(ctx context.Context, ch *channel.Channel, q store.Query) (SearchResult, error) {
	s := ch.Store()
	if s == nil {
		return SearchResult{}, fmt.Errorf("channel %q has no store", ch.Name())
	}
	recs, err := s.Search(ctx, q)
	if err != nil {
		return SearchResult{}, err
	}
	total := q.Offset + len(recs)
	if len(recs) == q.Limit || (len(recs) == 0 && q.Offset > 0) {
		if total, err = s.Count(ctx, q); err != nil {
			return SearchResult{}, err
		}
	}
	res := SearchResult{Total: total, Offset: q.Offset, Limit: q.Limit, Messages: make([]MessageSummary, 0, len(recs))}
	for _, rec := range recs {
		res.Messages = append(res.Messages, summary(rec))
	}
	return res, nil
}

func summary(rec *store.Record) MessageSummary {
	m := MessageSummary{ID: rec.Message.ID, Time: rec.Message.Time, State: rec.State, Reason: rec.Reason, Err: rec.Err,
		Attempts: rec.Attempts, Updated: rec.Updated, Meta: rec.Message.Meta}
	if k, ok := rec.KnownOutcome(); ok {
		m.Outcome = k.String()
	}
	return m
}

func (c *Console) searchMessages(w http.ResponseWriter, r *http.Request) {
	ch, ok := c.channel(w, r)
	if !ok {
		return
	}
	q, err := ParseQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := search(r.Context(), ch, q)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func writeStoreError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, store.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// stepNames lists the names of the flow's steps, in order.
func stepNames(f *flow.Flow) []string {
	names := []string{}
	var walk func(n *flow.Node)
	walk = func(n *flow.Node) {
		if n == nil {
			return
		}
		if n.Kind == flow.KindStep {
			names = append(names, n.Name)
		}
		for _, ch := range n.Children {
			walk(ch)
		}
	}
	if g := f.Graph(); g != nil {
		for _, ch := range g.Children {
			walk(ch)
		}
	}
	return names
}

func (c *Console) getMessage(w http.ResponseWriter, r *http.Request) {
	ch, ok := c.channel(w, r)
	if !ok {
		return
	}
	s := ch.Store()
	rec, err := s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	d := MessageDetail{Channel: ch.Name(), Record: rec, Steps: stepNames(ch.Flow())}
	if j, ok := s.(store.Journal); ok {
		if d.Journal, err = j.Journal(r.Context(), rec.Message.ID); err != nil {
			writeStoreError(w, err)
			return
		}
		if rec.State == store.Waiting {
			if wt, err := j.Wait(r.Context(), rec.Message.ID); err == nil {
				d.Wait = wt
			}
		}
	}
	writeJSON(w, http.StatusOK, d)
}

// TraceView is the answer of GET /api/channels/{channel}/messages/{id}/trace:
// the trace of the message's latest run, as flow.Trace records it.
type TraceView struct {
	ID    string      `json:"id"`
	State store.State `json:"state"`
	Trace *flow.Trace `json:"trace"`
}

func (c *Console) getTrace(w http.ResponseWriter, r *http.Request) {
	ch, ok := c.channel(w, r)
	if !ok {
		return
	}
	rec, err := ch.Store().Get(r.Context(), r.PathValue("id"))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if len(rec.Message.Trace) == 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("message %q has no trace recorded (not run yet, or the channel runs with trace: false)", rec.Message.ID))
		return
	}
	var t flow.Trace
	if err := json.Unmarshal(rec.Message.Trace, &t); err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("message %q: stored trace: %v", rec.Message.ID, err))
		return
	}
	writeJSON(w, http.StatusOK, TraceView{ID: rec.Message.ID, State: rec.State, Trace: &t})
}

// actionContext is the context an action runs in: the request's values,
// not its cancellation, so that a browser going away does not cancel a
// replay half way.
func actionContext(r *http.Request) context.Context { return context.WithoutCancel(r.Context()) }

func result(id string, res channel.Result) ActionResult {
	out := ActionResult{ID: id, State: res.State, Outcome: res.Outcome.String()}
	if res.Message != nil {
		out.Context = res.Message.Context
	}
	if res.Err != nil {
		out.Error = res.Err.Error()
	}
	return out
}

// readBody decodes an optional JSON object body into v.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return true
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, http.StatusBadRequest, "the body must be a JSON object: "+err.Error())
		return false
	}
	return true
}

func writeActionError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, channel.ErrNoStep), errors.Is(err, store.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, store.ErrNotWaiting), errors.Is(err, channel.ErrNotDurable):
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// replay: POST /api/channels/{channel}/messages/{id}/replay with an
// optional body {"from": "step"} or {"resume": true}.
func (c *Console) replay(w http.ResponseWriter, r *http.Request) {
	ch, ok := c.channel(w, r)
	if !ok {
		return
	}
	var body struct {
		From   string `json:"from"`
		Resume bool   `json:"resume"`
	}
	if !readBody(w, r, &body) {
		return
	}
	id := r.PathValue("id")
	ctx := actionContext(r)
	var res channel.Result
	var err error
	switch {
	case body.From != "" && body.Resume:
		writeError(w, http.StatusBadRequest, "from and resume exclude each other")
		return
	case body.From != "":
		res, err = ch.ReplayFrom(ctx, id, body.From)
	case body.Resume:
		res, err = ch.Resume(ctx, id)
	default:
		res, err = ch.Replay(ctx, id)
	}
	if err != nil {
		writeActionError(w, err)
		return
	}
	c.hub.poke()
	writeJSON(w, http.StatusOK, result(id, res))
}

// signal: POST /api/channels/{channel}/messages/{id}/signals/{signal}
// with a JSON object of values.
func (c *Console) signal(w http.ResponseWriter, r *http.Request) {
	ch, ok := c.channel(w, r)
	if !ok {
		return
	}
	var values map[string]any
	if !readBody(w, r, &values) {
		return
	}
	id := r.PathValue("id")
	res, err := ch.Signal(actionContext(r), id, r.PathValue("signal"), values)
	if err != nil {
		writeActionError(w, err)
		return
	}
	c.hub.poke()
	writeJSON(w, http.StatusOK, result(id, res))
}

// BulkResult is the answer of a bulk replay.
type BulkResult struct {
	// Replayed counts the messages replayed; Results has one entry each,
	// oldest first.
	Replayed int            `json:"replayed"`
	Results  []ActionResult `json:"results"`
	// More reports that more messages matched than the limit replayed.
	More bool `json:"more"`
}

// bulkReplay: POST /api/channels/{channel}/replay with {"state": "dead"
// or "error", "since", "until", "limit"}: replays the matching messages,
// oldest first.
func (c *Console) bulkReplay(w http.ResponseWriter, r *http.Request) {
	ch, ok := c.channel(w, r)
	if !ok {
		return
	}
	var body struct {
		State store.State `json:"state"`
		Since time.Time   `json:"since"`
		Until time.Time   `json:"until"`
		Limit int         `json:"limit"`
	}
	if !readBody(w, r, &body) {
		return
	}
	if body.State != store.Dead && body.State != store.Error {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("state: expected dead or error, got %q", body.State))
		return
	}
	if body.Limit == 0 {
		body.Limit = DefaultBulk
	}
	if body.Limit < 0 || body.Limit > MaxBulk {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: expected a number from 1 to %d", MaxBulk))
		return
	}
	ctx := actionContext(r)
	// The IDs first: a replayed message leaves the state, so paging over
	// the state while replaying would skip some.
	recs, err := ch.Store().Search(ctx, store.Query{States: []store.State{body.State}, Since: body.Since, Until: body.Until, Limit: body.Limit + 1})
	if err != nil {
		writeStoreError(w, err)
		return
	}
	out := BulkResult{Results: []ActionResult{}}
	if len(recs) > body.Limit {
		out.More, recs = true, recs[:body.Limit]
	}
	for _, rec := range recs {
		res, err := ch.Replay(ctx, rec.Message.ID)
		if err != nil {
			out.Results = append(out.Results, ActionResult{ID: rec.Message.ID, State: rec.State, Outcome: ferrors.KindOf(err).String(), Error: err.Error()})
			continue
		}
		out.Replayed++
		ar := result(rec.Message.ID, res)
		ar.Context = nil // the list stays small
		out.Results = append(out.Results, ar)
	}
	c.hub.poke()
	writeJSON(w, http.StatusOK, out)
}
