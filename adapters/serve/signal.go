package serve

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/store"
)

// maxSignalBody bounds the body of a signal request.
const maxSignalBody = 1 << 20

// signal is the admin endpoint that sends a signal to a message waiting
// in a durable channel:
//
//	POST /channels/{channel}/messages/{id}/signals/{signal}   body: a JSON object of values (or empty)
//
// It answers 200 with the message's state, outcome and context after its
// run resumed (it may wait again), 404 for an unknown channel or message,
// 409 when the message does not wait for that signal, 400 for a body
// that is not a JSON object, 401 without the admin token when
// Options.AdminToken is set (see requireAdmin).
func (s *Server) signal(w http.ResponseWriter, r *http.Request) {
	ch, ok := s.Channel(r.PathValue("channel"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "no channel " + r.PathValue("channel")})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSignalBody))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "read body: " + err.Error()})
		return
	}
	var values map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &values); err != nil || values == nil && string(body) != "null" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "the body must be a JSON object of the signal's values"})
			return
		}
	}
	res, err := ch.Signal(r.Context(), r.PathValue("id"), r.PathValue("signal"), values)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]any{"error": err.Error()})
		return
	case errors.Is(err, store.ErrNotWaiting), errors.Is(err, channel.ErrNotDurable):
		writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error()})
		return
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error()})
		return
	}
	out := map[string]any{"id": r.PathValue("id"), "state": res.State, "outcome": res.Outcome}
	if res.Message != nil {
		out["context"] = res.Message.Context
	}
	if res.Err != nil {
		out["error"] = res.Err.Error()
	}
	writeJSON(w, http.StatusOK, out)
}
