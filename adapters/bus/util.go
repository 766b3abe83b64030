package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"sync/atomic"
	"unsafe"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// ids numbers the messages of this process; prefix tells processes apart.
var (
	idPrefix = func() string {
		var b [6]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:]) + "-"
	}()
	idSeq atomic.Uint64
)

// newID returns a message id unique to this process and, by its random
// prefix, across processes.
func (b *Bus) newID() string {
	var buf [40]byte
	return string(strconv.AppendUint(append(buf[:0], idPrefix...), idSeq.Add(1), 10))
}

// nextID is newID for the worker of s: it writes the ids into a chunk of
// its own, one allocation for many ids (a message id costs as much as
// the body's copy otherwise).
func (s *service) nextID() string {
	const chunk = 2048
	if cap(s.ids)-len(s.ids) < 48 {
		s.ids = make([]byte, 0, chunk)
	}
	start := len(s.ids)
	s.ids = strconv.AppendUint(append(s.ids, idPrefix...), idSeq.Add(1), 10)
	b := s.ids[start:len(s.ids):len(s.ids)]
	return unsafe.String(&b[0], len(b)) // never written again: ids only append after it
}

// baseContext is the context services run under: the Start context
// without its cancellation.
func (b *Bus) baseContext() context.Context {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.ctx == nil {
		return context.Background()
	}
	return b.ctx
}

func sortedKeys(a Actions) []string { return slices.Sorted(maps.Keys(a)) }

// sameService reports whether a and b are the same value (the same flow
// under two actions).
func sameService(a, b flow.Service) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta.Comparable() && a == b
}

// levelHandler filters records below the bus's level before its handler.
type levelHandler struct {
	h     slog.Handler
	level *slog.LevelVar
}

func (l *levelHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.level.Level() && l.h.Enabled(ctx, lv)
}

func (l *levelHandler) Handle(ctx context.Context, r slog.Record) error { return l.h.Handle(ctx, r) }

func (l *levelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &levelHandler{h: l.h.WithAttrs(attrs), level: l.level}
}

func (l *levelHandler) WithGroup(name string) slog.Handler {
	return &levelHandler{h: l.h.WithGroup(name), level: l.level}
}

// sourceHandler submits the messages of a service's sources to its
// SourceAction.
type sourceHandler struct{ s *service }

// Handle implements channel.Handler: Ack once the message is queued.
func (h sourceHandler) Handle(ctx context.Context, m *message.Message) channel.Result {
	s := h.s
	var body map[string]any
	if len(m.Payload) > 0 && m.Payload[0] == '{' {
		c, err := fc.FromJSON(m.Payload)
		if err != nil {
			err = errors.Stopf("payload: %v", err)
			return channel.Result{Settle: channel.Ack, Outcome: errors.KindStop, Message: m, Err: err}
		}
		body = c.Map()
	} else {
		body = map[string]any{}
		if len(m.Payload) > 0 {
			body["body"] = string(m.Payload)
		}
	}
	e := &envelope{id: s.def.Name + ":" + m.ID, action: s.def.SourceAction, body: body, meta: m.Meta}
	if err := s.deliver(ctx, e); err != nil {
		if errors.Is(err, store.ErrExists) {
			// a message the source delivered before (a poll's element seen again)
			return channel.Result{Settle: channel.Ack, Outcome: errors.KindOK, Message: m}
		}
		kind := errors.KindOf(err)
		if errors.Is(err, ErrMailboxFull) {
			err = errors.RetryAfter(err, channel.BusyRetryAfter)
			kind = errors.KindRetry
		}
		return channel.Result{Settle: channel.Leave, Outcome: kind, Message: m, Err: err, RetryAfter: channel.BusyRetryAfter}
	}
	return channel.Result{Settle: channel.Ack, Outcome: errors.KindOK, Message: m}
}
