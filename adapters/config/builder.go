package config

import "github.com/svcflow/svcflow/flow"

// Builder returns a fresh builder of the named flow, for a caller that adds
// to it before building (middleware with Use, a tap error hook): the
// channels of `flowrun serve` build their flows this way, with metrics.
func (c *Config) Builder(name string) (*flow.Builder, bool) {
	def, ok := c.flows[name]
	if !ok {
		return nil, false
	}
	return def.builder(nil), true
}
