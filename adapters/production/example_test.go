package production_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/svcflow/svcflow/adapters/production"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// echo is the seed's business operation: it answers the request's
// message with a prefix.
var echo = flow.Step("echo", func(ctx context.Context, c *fc.Context) error {
	msg, _ := c.Get("message")
	if msg == "" {
		return errors.Stop("empty message")
	}
	c.Set("my_string", fmt.Sprint("MyBusinessOperation echos ", msg))
	return nil
})

// A business service forwards to a process that calls an operation; the
// Director reaches the service by name, as the seed's Flask handler does.
func ExampleProduction() {
	ctx := context.Background()
	p := production.New("Python.ExampleProduction", production.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	_ = p.Add(production.Component{Name: "Python.MyBusinessOperation", Kind: production.Operation, Service: echo})
	_ = p.Add(production.Component{Name: "Python.MyBusinessProcess", Kind: production.Process,
		Targets: map[string]string{"Operation": "Python.MyBusinessOperation"},
		Service: flow.Step("bp", func(ctx context.Context, c *fc.Context) error {
			out, err := production.From(ctx).SendSync(ctx, "Operation", c.Map())
			if err != nil {
				return err
			}
			c.Set("reply", out["my_string"])
			return nil
		})})
	_ = p.Add(production.Component{Name: "Python.MyBusinessService", Kind: production.Service,
		Service: flow.Step("bs", func(ctx context.Context, c *fc.Context) error {
			out, err := production.From(ctx).SendSync(ctx, "Python.MyBusinessProcess", c.Map())
			if err != nil {
				return err
			}
			c.Set("reply", out["reply"])
			return nil
		})})
	if err := p.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer p.Stop(ctx)

	bs, _ := p.Director().Service("Python.MyBusinessService")
	resp, err := bs.ProcessInput(ctx, map[string]any{"message": "hello"})
	fmt.Println(resp["reply"], err)
	_, err = bs.ProcessInput(ctx, map[string]any{"message": ""})
	if se, ok := errors.AsType[*errors.StopError](err); ok {
		fmt.Println("rejected:", se.Reason)
	}
	// Output:
	// MyBusinessOperation echos hello <nil>
	// rejected: empty message
}

// The seed's native async calls: two requests with completion keys, each
// response kept by key in the instance's typed state, read on complete.
func ExampleProcessOf() {
	ctx := context.Background()
	type state struct{ One, Two any }
	bp := &production.ProcessOf[state]{
		ServiceName: "MyBP",
		OnMessage: func(ctx context.Context, in *production.Instance[state]) error {
			_ = in.SendAsync(ctx, "Python.MyBO", map[string]any{"message": "Message1"}, "1")
			return in.SendAsync(ctx, "Python.MyBO", map[string]any{"message": "Message2"}, "2")
		},
		OnResponse: func(ctx context.Context, in *production.Instance[state], r production.Result) error {
			switch r.Key {
			case "1":
				in.State.One = r.Response["my_string"]
			case "2":
				in.State.Two = r.Response["my_string"]
			}
			return nil
		},
		OnComplete: func(ctx context.Context, in *production.Instance[state]) error {
			in.Response["one"], in.Response["two"] = in.State.One, in.State.Two
			return nil
		},
	}
	p := production.New("async", production.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	_ = p.Add(production.Component{Name: "Python.MyBO", Kind: production.Operation, Service: echo})
	_ = p.Add(production.Component{Name: "Python.MyBP", Kind: production.Process, Service: bp})
	_ = p.Start(ctx)
	defer p.Stop(ctx)

	out, err := p.SendSync(ctx, "Python.MyBP", map[string]any{})
	fmt.Println(out["one"])
	fmt.Println(out["two"], err)
	// Output:
	// MyBusinessOperation echos Message1
	// MyBusinessOperation echos Message2 <nil>
}

// SendMulti runs the calls concurrently and returns a result per call, in
// input order, each with its status; a failure cancels none of the others.
func ExampleProduction_SendMulti() {
	ctx := context.Background()
	p := production.New("multi", production.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	_ = p.Add(production.Component{Name: "Python.MyMultiBO", Kind: production.Operation, Service: echo})
	_ = p.Start(ctx)
	defer p.Stop(ctx)

	for _, r := range p.SendMulti(ctx,
		production.Call{Target: "Python.MyMultiBO", Request: map[string]any{"message": "Message1"}},
		production.Call{Target: "Python.MyMultiBO", Request: map[string]any{"message": ""}},
		production.Call{Target: "Python.Nowhere"},
	) {
		fmt.Println(r.Target, r.Status, r.Response["my_string"])
	}
	// Output:
	// Python.MyMultiBO ok MyBusinessOperation echos Message1
	// Python.MyMultiBO stop <nil>
	// Python.Nowhere failed <nil>
}
