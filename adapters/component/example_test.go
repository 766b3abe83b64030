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
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
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

// DiscountSpec is the spec of the discount step: what YAML writes under
// `- discount: ...`. rate is an expression over the run's context,
// parsed when the file is read; into names the key it writes.
type DiscountSpec struct {
	Rate component.Expr `yaml:"rate" spec:"required,scalar" doc:"the discount rate, an expression"`
	Into component.Key  `yaml:"into" default:"total" doc:"the key of the discounted total"`
}

// StepName names the step when the YAML gives it no name: discount(total).
func (s DiscountSpec) StepName() string { return "discount(" + string(s.Into) + ")" }

// Registering a custom step component: a spec struct, a constructor
// returning the step's service (named env.Name), and a registry holding
// it beside the built-in steps. YAML flows then name it like set or http;
// the flow's checks see its contract, and a problem in its spec is
// reported at its position in the file.
func ExampleStep() {
	discount := component.Step("discount", "apply a discount rate to subtotal",
		func(env component.Env, s DiscountSpec) (flow.Service, error) {
			needs := []fc.Info{fc.Any("subtotal")}
			for _, k := range s.Rate.Keys() {
				needs = append(needs, fc.Any(k))
			}
			rate := s.Rate.Parsed()
			return flow.Step(env.Name, func(_ context.Context, c *fc.Context) error {
				r, err := rate.Eval(c.View())
				if err != nil {
					return err
				}
				sub, _ := c.Get("subtotal")
				c.Set(string(s.Into), sub.(float64)*(1-r.(float64)))
				return nil
			}, flow.Needs(needs...), flow.Provides(fc.Any(string(s.Into)))), nil
		})
	reg, _ := component.NewRegistry(append(steps.All(), discount)...)

	cfg, err := config.LoadSources([]config.Source{{Name: "discount.yaml", Data: []byte(`
flows:
  price:
    input: [subtotal, tier]
    steps:
      - discount: "tier == 'gold' ? 0.2 : 0.0"
      - log: {message: "priced", level: debug}
`)}}, config.WithComponents(reg))
	if err != nil {
		fmt.Println(err)
		return
	}
	f, _ := cfg.Flow("price")
	out, err := f.Run(context.Background(), map[string]any{"subtotal": 100.0, "tier": "gold"})
	fmt.Println(out.Map()["total"], err, f.Graph().Children[0].Name)

	_, err = config.LoadSources([]config.Source{{Name: "bad.yaml", Data: []byte(`
flows:
  price:
    input: [subtotal]
    steps:
      - discount: {rate: "0.1 +", into: total}
`)}}, config.WithComponents(reg))
	fmt.Println(err)
	// Output:
	// 80 <nil> discount(total)
	// bad.yaml:6:32: discount: rate: bad expression "0.1 +": unexpected token EOF
}
