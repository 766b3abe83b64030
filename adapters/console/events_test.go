package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/console"
	"github.com/svcflow/svcflow/adapters/store"
)

// events reads server-sent events from path.
type events struct {
	t   *testing.T
	r   *bufio.Reader
	res *http.Response
}

func (e *env) events(path string) *events {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+path, nil)
	require.NoError(e.t, err)
	res, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { res.Body.Close() })
	require.Equal(e.t, http.StatusOK, res.StatusCode)
	require.Equal(e.t, "text/event-stream", res.Header.Get("Content-Type"))
	return &events{t: e.t, r: bufio.NewReader(res.Body), res: res}
}

// next returns the next event's name and data.
func (ev *events) next() (string, []byte) {
	ev.t.Helper()
	var name, data string
	for {
		line, err := ev.r.ReadString('\n')
		require.NoError(ev.t, err)
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && name != "":
			return name, []byte(data)
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data += line[len("data: "):]
		}
	}
}

func TestChannelEvents(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(testing.TB) store.Store) {
		e := newEnv(t, newStore, console.Options{Token: token, Interval: 5 * time.Millisecond})
		ev := e.events("/api/events")
		name, data := ev.next()
		assert.Equal(t, "channels", name)
		var chans []console.ChannelInfo
		require.NoError(t, json.Unmarshal(data, &chans))
		require.Len(t, chans, 2)
		assert.Equal(t, 0, chans[0].Counts[store.Done])

		e.handle(e.orders, "ord-1", map[string]any{"n": 1}, nil)
		// Updates come when something changed, until the counts show it
		// (the store's count and the channel's counter change one after
		// the other).
		for chans[0].Counts[store.Done] != 1 || chans[0].Outcomes["done"] != 1 {
			name, data = ev.next()
			require.Equal(t, "channels", name)
			require.NoError(t, json.Unmarshal(data, &chans))
		}
		assert.Equal(t, 0, chans[0].Counts[store.Error])
	})
}

func TestMessageEvents(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(testing.TB) store.Store) {
		e := newEnv(t, newStore, console.Options{Token: token, Interval: 5 * time.Millisecond})
		e.handle(e.orders, "ord-1", map[string]any{"n": 1}, map[string]string{"customer": "c-1"})
		ev := e.events("/api/channels/orders/messages/events?meta=customer=c-2")
		name, data := ev.next()
		assert.Equal(t, "messages", name)
		var res console.SearchResult
		require.NoError(t, json.Unmarshal(data, &res))
		assert.Equal(t, 0, res.Total)

		e.handle(e.orders, "ord-2", map[string]any{"n": 2}, map[string]string{"customer": "c-2"})
		// A snapshot may catch ord-2 while it runs; the stream sends
		// another when its state changes, and the last one shows it done.
		for {
			name, data = ev.next()
			assert.Equal(t, "messages", name)
			res = console.SearchResult{}
			require.NoError(t, json.Unmarshal(data, &res))
			require.Equal(t, []string{"ord-2"}, ids(res), "only what matches the stream's search")
			if res.Messages[0].State != store.Processing {
				break
			}
		}
		assert.Equal(t, store.Done, res.Messages[0].State)

		var er map[string]string
		assert.Equal(t, http.StatusBadRequest, e.get("/api/channels/orders/messages/events?state=nope", &er))
		assert.Equal(t, http.StatusNotFound, e.get("/api/channels/nope/messages/events", &er))
	})
}
