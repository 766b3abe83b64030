package httpsource_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/httpsource"
)

// TestComponentSharesServers: routes on one listen address share a
// server; a bad address is refused when built, before anything listens.
func TestComponentSharesServers(t *testing.T) {
	env := component.Env{Name: "c", Servers: &component.Servers{}}
	build := func(s httpsource.Spec) error {
		if s.Method == "" {
			s.Method = "POST"
		}
		_, err := httpsource.Component.Build(env, s)
		return err
	}
	require.NoError(t, build(httpsource.Spec{Listen: "127.0.0.1:0", Path: "/a"}))
	require.NoError(t, build(httpsource.Spec{Listen: "127.0.0.1:0", Path: "/b"}))
	require.NoError(t, build(httpsource.Spec{Listen: "localhost:0", Path: "/a"}))
	assert.Equal(t, []string{"http 127.0.0.1:0", "http localhost:0"}, env.Servers.Keys())
	assert.ErrorIs(t, build(httpsource.Spec{Listen: "127.0.0.1:0", Path: "/a"}), httpsource.ErrDuplicateRoute)
	for _, addr := range []string{"localhost", "127.0.0.1:x", "127.0.0.1:70000", "a b:80", ""} {
		assert.ErrorIs(t, build(httpsource.Spec{Listen: addr, Path: "/a"}), httpsource.ErrInvalidRoute, addr)
	}
	assert.Equal(t, "", env.Servers.All()["http 127.0.0.1:0"].Addr(), "nothing listens after building")
}
