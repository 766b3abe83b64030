package cron

import (
	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
)

// Spec is the configuration of a schedule as a channel's source:
//
//	from: {cron: "@every 1m"}                          # the schedule alone
//	from: {cron: {spec: "*/5 * * * * *", seconds: true}}
type Spec struct {
	Spec    string `yaml:"spec" spec:"required,scalar" doc:"a cron expression (minute hour day month weekday) or @every 1m, @hourly, @daily, ..."`
	Seconds bool   `yaml:"seconds" doc:"the expression has a leading seconds field"`
	Overlap bool   `yaml:"overlap" doc:"a tick may start while the previous one still runs"`
}

// Component is the cron source component: one message per tick.
var Component = component.Source("cron", "a schedule: one message per tick, with the tick's time as payload",
	func(env component.Env, s Spec) (channel.Source, error) {
		opts := []Option{WithLogger(env.Logger)}
		if s.Seconds {
			opts = append(opts, WithSeconds())
		}
		if s.Overlap {
			opts = append(opts, WithOverlap())
		}
		return New(s.Spec, opts...)
	})

func init() { component.Register(Component) }
