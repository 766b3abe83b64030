package httpsource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/httpsource"
	"github.com/svcflow/svcflow/adapters/message"
)

func Example() {
	srv := httpsource.NewServer(httpsource.Config{
		Addr:   "127.0.0.1:0", // any free port
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	greet, err := srv.Route("POST", "/greet")
	if err != nil {
		panic(err)
	}
	if err := srv.Listen(); err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()

	// In a program a channel runs the source; here a HandlerFunc does.
	ran := make(chan error, 1)
	go func() {
		ran <- greet.Run(ctx, channel.HandlerFunc(func(_ context.Context, m *message.Message) channel.Result {
			var in struct{ Name string }
			if err := json.Unmarshal(m.Payload, &in); err != nil {
				return channel.Result{Settle: channel.Fail, State: "error", Err: err, ErrorID: "E1"}
			}
			out := m.Clone()
			out.Context = map[string]any{"greeting": "hello, " + in.Name}
			return channel.Result{Settle: channel.Ack, State: "done", Message: out}
		}))
	}()
	if err := srv.WaitReady(ctx); err != nil {
		panic(err)
	}

	resp, err := http.Post("http://"+srv.Addr()+"/greet", "application/json", strings.NewReader(`{"name":"Ada"}`))
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status)
	fmt.Print(string(body))

	stop()
	fmt.Println(<-ran, <-served)
	http.DefaultClient.CloseIdleConnections()
	// Output:
	// 200 OK
	// {"greeting":"hello, Ada"}
	// <nil> <nil>
}
