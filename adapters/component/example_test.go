package component_test

import (
	"context"
	"fmt"
	"strconv"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/steps"
)

// CountSpec is the spec of the count source: what YAML writes under
// `from: {count: ...}`.
type CountSpec struct {
	To   int    `yaml:"to" spec:"required,scalar" doc:"send the numbers 1 to this"`
	Name string `yaml:"name" default:"n" doc:"the payload key"`
}

// countSource sends the numbers 1..To as messages, then stops the example.
type countSource struct {
	spec CountSpec
	done func()
}

func (s *countSource) Name() string { return "count" }

func (s *countSource) Run(ctx context.Context, h channel.Handler) error {
	for i := 1; i <= s.spec.To; i++ {
		m := message.New("application/json", []byte(`{"`+s.spec.Name+`": `+strconv.Itoa(i)+`}`), nil)
		r := h.Handle(ctx, m)
		fmt.Println(r.State, r.Message.Context["square"])
	}
	s.done()
	<-ctx.Done()
	return nil
}

// Registering a custom source: a spec struct, a constructor, and one
// Register call (in an init function, for component.Default). YAML then
// names it like any shipped source, and validate, serve and `flowrun
// services` know it.
func ExampleSource() {
	ctx, stop := context.WithCancel(context.Background())
	reg, _ := component.NewRegistry(component.MemoryStore, steps.Set,
		component.Source("count", "the numbers 1 to N", func(env component.Env, s CountSpec) (channel.Source, error) {
			return &countSource{spec: s, done: stop}, nil
		}))

	cfg, err := config.LoadSources([]config.Source{{Name: "count.yaml", Data: []byte(`
flows:
  square:
    input: [n]
    steps: [{set: {square: "n * n"}}]
channels:
  numbers:
    from: {count: 3}
    flow: square
    store: memory
`)}}, config.WithComponents(reg))
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := serve.New(cfg, serve.Options{Admin: "off"})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := srv.Run(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// done 1
	// done 4
	// done 9
}
