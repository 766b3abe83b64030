package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/url"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/console"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// A console over one channel, searched by meta through the JSON API.
func ExampleNew() {
	quiet := slog.New(slog.DiscardHandler)
	st := store.NewMemory()
	defer st.Close()
	f := flow.New("orders", flow.Step("price", func(_ context.Context, c *fc.Context) error {
		c.Set("total", 42)
		return nil
	})).MustBuild()
	ch, _ := channel.New(channel.Config{Name: "orders", Flow: f, Store: st, Logger: quiet})
	_ = ch.Start(context.Background())
	defer ch.Stop(context.Background())
	for i, customer := range []string{"c-1", "c-2", "c-1"} {
		m, _ := message.NewJSON(map[string]any{"n": i}, map[string]string{"customer": customer})
		m.ID = fmt.Sprintf("ord-%d", i)
		ch.Handle(context.Background(), m)
	}

	c := console.New(console.Options{
		Channels: func() []*channel.Channel { return []*channel.Channel{ch} },
		Token:    "s3cret",         // actions need it
		Addr:     "127.0.0.1:9090", // loopback: reads need no token
		Logger:   quiet,
	})
	defer c.Close()
	srv := httptest.NewServer(c) // flowrun serve mounts it on the admin address
	defer srv.Close()

	res, err := srv.Client().Get(srv.URL + "/api/channels/orders/messages?meta=customer=c-1&order=asc")
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	var found console.SearchResult
	_ = json.NewDecoder(res.Body).Decode(&found)
	fmt.Println(found.Total, "found")
	for _, m := range found.Messages {
		fmt.Println(m.ID, m.State, m.Meta["customer"])
	}
	// Output:
	// 2 found
	// ord-0 done c-1
	// ord-2 done c-1
}

// The flow's graph laid out in layers, as the graph page draws it.
func ExampleLayoutDiagram() {
	noop := func(context.Context, *fc.Context) error { return nil }
	f := flow.New("checkout", flow.Step("validate", noop), flow.Step("charge", noop)).MustBuild()
	l := console.LayoutDiagram(f.Name(), f.Graph().Diagram())
	for _, n := range l.Nodes {
		fmt.Println(n.Layer, n.Label)
	}
	// Output:
	// 0 checkout
	// 1 validate
	// 2 charge
	// 3 end
}

// The search's URL parameters, as GET /api/channels/{channel}/messages
// reads them.
func ExampleParseQuery() {
	v, _ := url.ParseQuery("state=error,dead&meta=customer=c-42&id=7f3a&limit=20")
	q, err := console.ParseQuery(v)
	fmt.Println(q.States, q.Meta, q.IDContains, q.Limit, q.Desc, err)
	_, err = console.ParseQuery(url.Values{"limit": {"9999"}})
	fmt.Println(err)
	// Output:
	// [error dead] map[customer:c-42] 7f3a 20 true <nil>
	// limit: "9999": expected a number from 1 to 500
}
