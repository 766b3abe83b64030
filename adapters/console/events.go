package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// hub fans snapshots out to the event streams. Each subscriber has a
// buffer of one snapshot: publishing replaces a snapshot the subscriber
// has not taken yet by the newer one (drop to latest), so a slow reader
// costs the publisher nothing and never holds it up.
type hub struct {
	mu   sync.Mutex
	subs map[*sub]struct{}
	wake chan struct{} // poke: look for changes now
}

type sub struct {
	ch      chan []byte // capacity 1: the latest snapshot not yet taken
	dropped int         // snapshots replaced before being taken (under hub.mu)
}

func newHub() *hub {
	return &hub{subs: map[*sub]struct{}{}, wake: make(chan struct{}, 1)}
}

func (h *hub) subscribe() *sub {
	s := &sub{ch: make(chan []byte, 1)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *hub) unsubscribe(s *sub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

func (h *hub) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// publish hands b to every subscriber without blocking.
func (h *hub) publish(b []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.ch <- b:
		default:
			// Full: drop the older snapshot, keep the latest. Only publish
			// sends, under mu, so the send after the drain succeeds.
			select {
			case <-s.ch:
				s.dropped++
			default:
			}
			select {
			case s.ch <- b:
			default:
			}
		}
	}
}

// poke makes the loop look for changes at once (after an action).
func (h *hub) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// loop publishes the channels' snapshot every Interval (or when poked)
// while someone listens, when it changed.
func (c *Console) loop() {
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	var last []byte
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		case <-c.hub.wake:
		}
		if c.hub.len() == 0 {
			last = nil
			continue
		}
		b, err := json.Marshal(c.channelInfos(context.Background()))
		if err != nil {
			c.opts.Logger.Warn("console: live update", "error", err)
			continue
		}
		if bytes.Equal(b, last) {
			continue
		}
		last = b
		c.hub.publish(b)
	}
}

// stream is one server-sent event stream.
type stream struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	c   *Console
	err error
}

func (c *Console) openStream(w http.ResponseWriter) *stream {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &stream{w: w, rc: http.NewResponseController(w), c: c}
}

// send writes one event, within the write timeout: a browser that does
// not read is cut off instead of holding the handler forever.
func (s *stream) send(event string, data []byte) bool {
	if s.err != nil {
		return false
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.c.opts.WriteTimeout))
	if _, s.err = fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", event, data); s.err == nil {
		s.err = s.rc.Flush()
	}
	return s.err == nil
}

// end clears the write deadline, so that it does not outlive the stream
// on a connection kept alive for other requests.
func (s *stream) end() { _ = s.rc.SetWriteDeadline(time.Time{}) }

// channelEvents: GET /api/events, a stream of "channels" events, each
// the channel list of GET /api/channels, sent at once and then whenever
// it changes.
func (c *Console) channelEvents(w http.ResponseWriter, r *http.Request) {
	sb := c.hub.subscribe()
	defer c.hub.unsubscribe(sb)
	first, err := json.Marshal(c.channelInfos(r.Context()))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s := c.openStream(w)
	defer s.end()
	if !s.send("channels", first) {
		return
	}
	for {
		select {
		case <-c.done:
			return
		case <-r.Context().Done():
			return
		case b := <-sb.ch:
			if !s.send("channels", b) {
				return
			}
		}
	}
}

// messageEvents: GET /api/channels/{channel}/messages/events with the
// parameters of a search: a stream of "messages" events, each the
// search's answer, sent at once and then whenever it changes. The search
// runs again when the channels change, only as fast as the browser reads.
func (c *Console) messageEvents(w http.ResponseWriter, r *http.Request) {
	ch, ok := c.channel(w, r)
	if !ok {
		return
	}
	q, err := ParseQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	sb := c.hub.subscribe()
	defer c.hub.unsubscribe(sb)
	var s *stream
	var last []byte
	for {
		res, err := search(r.Context(), ch, q)
		if err != nil {
			if s == nil {
				writeStoreError(w, err)
				return
			}
			b, _ := json.Marshal(map[string]string{"error": err.Error()})
			if !s.send("error", b) {
				return
			}
		} else if b, err := json.Marshal(res); err == nil && !bytes.Equal(b, last) {
			if s == nil {
				s = c.openStream(w)
				defer s.end()
			}
			if !s.send("messages", b) {
				return
			}
			last = b
		}
		select {
		case <-c.done:
			return
		case <-r.Context().Done():
			return
		case <-sb.ch:
		}
	}
}
