package natskv_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	_ "github.com/svcflow/svcflow/adapters/component/all"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/kv"
	"github.com/svcflow/svcflow/adapters/kv/kvtest"
	"github.com/svcflow/svcflow/adapters/kv/natskv"
	"github.com/svcflow/svcflow/adapters/nats"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer runs a nats-server with JetStream storing under dir on
// port (0: a free one), shut down at the test's end.
func startServer(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	require.NoError(t, err)
	srv.Start()
	require.True(t, srv.ReadyForConnections(30*time.Second), "nats-server not ready")
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

var buckets atomic.Int64

// TestConformance: the backend passes the kv conformance suite against
// a real nats-server, and against the server embedded in the process.
func TestConformance(t *testing.T) {
	t.Run("url", func(t *testing.T) {
		srv := startServer(t, t.TempDir(), 0)
		kvtest.Run(t, func(t *testing.T) kv.Backend {
			b, err := natskv.NewBackend(t.Context(), natskv.Options{URL: []string{srv.ClientURL()}, Bucket: fmt.Sprintf("b%d", buckets.Add(1))})
			require.NoError(t, err)
			return b
		})
	})
	t.Run("embedded", func(t *testing.T) {
		dir := t.TempDir()
		kvtest.Run(t, func(t *testing.T) kv.Backend {
			b, err := natskv.NewBackend(t.Context(), natskv.Options{DataDir: dir, Listen: "127.0.0.1:0", Bucket: fmt.Sprintf("e%d", buckets.Add(1))})
			require.NoError(t, err)
			return b
		})
		_, err := os.Stat(filepath.Join(dir, "nats", "jetstream"))
		assert.NoError(t, err, "the embedded server stores under the data folder's nats folder")
	})
}

// TestSurvivesServerRestart: values saved before the server (file
// storage) was shut down are restored after it was started again on the
// same store.
func TestSurvivesServerRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	srv := startServer(t, dir, 0)
	url := srv.ClientURL()
	s, err := natskv.Open(ctx, natskv.Options{URL: []string{url}})
	require.NoError(t, err)
	require.NoError(t, s.Scope("orders", "poller").Save(ctx, "last_id", 41))
	require.NoError(t, s.Scope("orders", "poller").Save(ctx, "gone", 1))
	require.NoError(t, s.Scope("orders", "poller").Delete(ctx, "gone"))
	require.NoError(t, s.Close())
	srv.Shutdown()
	srv.WaitForShutdown()

	srv2 := startServer(t, dir, 0)
	s, err = natskv.Open(ctx, natskv.Options{URL: []string{srv2.ClientURL()}})
	require.NoError(t, err)
	defer s.Close()
	v, found, err := s.Scope("orders", "poller").Restore(ctx, "last_id")
	require.NoError(t, err)
	assert.True(t, found, "saved before the restart")
	assert.EqualValues(t, 41, v)
	_, found, err = s.Scope("orders", "poller").Restore(ctx, "gone")
	require.NoError(t, err)
	assert.False(t, found, "deleted before the restart")
	_, found, err = s.Scope("invoices", "poller").Restore(ctx, "last_id")
	require.NoError(t, err)
	assert.False(t, found, "another channel")
}

// TestKeys: scopes and keys of any text map to valid, distinct bucket
// keys, and work end to end.
func TestKeys(t *testing.T) {
	valid := regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)
	assert.Equal(t, "orders/poller.last_5Fid", natskv.Key("orders/poller", "last_id"))
	assert.Equal(t, "/.k", natskv.Key("/", "k"))
	long := strings.Repeat("x", 300)
	pairs := [][2]string{
		{"a/", "nk"}, {"a/n", "k"}, {"a.b", "c"}, {"a", "b.c"}, {"", ""}, {"_", ""}, {"", "_"},
		{"c/n", "a b"}, {"c/n", "a_20b"}, {"c/n", "é*>"}, {"c/n", ".."}, {"c/n", "."},
		{"c/n", long}, {"c/n", long + "y"}, {"c/n", "_h"},
	}
	seen := map[string][2]string{}
	for _, p := range pairs {
		k := natskv.Key(p[0], p[1])
		assert.Regexp(t, valid, k, "%q", p)
		assert.False(t, strings.HasPrefix(k, ".") || strings.HasSuffix(k, ".") || strings.Contains(k, ".."), "%q: %q", p, k)
		assert.LessOrEqual(t, len(k), 600, "%q", p)
		if other, dup := seen[k]; dup {
			t.Errorf("%q and %q share the key %q", p, other, k)
		}
		seen[k] = p
	}

	srv := startServer(t, t.TempDir(), 0)
	b, err := natskv.NewBackend(t.Context(), natskv.Options{URL: []string{srv.ClientURL()}, Bucket: "keys"})
	require.NoError(t, err)
	defer b.Close()
	for i, p := range pairs {
		require.NoError(t, b.Put(t.Context(), p[0], p[1], []byte(fmt.Sprint(i))), "%q", p)
	}
	for i, p := range pairs {
		v, found, err := b.Get(t.Context(), p[0], p[1])
		require.NoError(t, err)
		assert.True(t, found, "%q", p)
		assert.Equal(t, fmt.Sprint(i), string(v), "%q", p)
	}
}

// TestReplicasDiffer: an existing bucket with other replicas than
// declared is an error, never a silent reconfiguration.
func TestReplicasDiffer(t *testing.T) {
	srv := startServer(t, t.TempDir(), 0)
	o := natskv.Options{URL: []string{srv.ClientURL()}, Bucket: "r"}
	b, err := natskv.NewBackend(t.Context(), o)
	require.NoError(t, err)
	require.NoError(t, b.Close())
	o.Replicas = 3
	_, err = natskv.NewBackend(t.Context(), o)
	require.ErrorIs(t, err, natskv.ErrReplicas)
	assert.Contains(t, err.Error(), "kv nats bucket r: the bucket exists with other replicas: declared 3, server 1")
}

const countYAML = `version: 1
providers:
  state: {kv: {backend: nats, url: %s, bucket: counts}}
flows:
  count:
    steps:
      - restore: {key: seen, into: seen, default: 0, node: counter}
      - set: {seen: "seen + 1"}
      - save: {key: seen, value: seen, node: counter}
`

func loadFile(t *testing.T, dir, text string) (*config.Config, error) {
	t.Helper()
	path := filepath.Join(dir, "flows.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return config.Load([]string{path}, config.WithDataDir(dir))
}

// TestYAML: backend nats of the kv provider, with a url and with the
// embedded server: the save and restore steps count on across loads of
// the configuration (a restart).
func TestYAML(t *testing.T) {
	count := func(t *testing.T, dir, text string) any {
		cfg, err := loadFile(t, dir, text)
		require.NoError(t, err)
		defer cfg.Providers().Close(context.Background())
		f, ok := cfg.Flow("count")
		require.True(t, ok)
		out, err := f.Run(t.Context(), map[string]any{})
		require.NoError(t, err)
		v, _ := out.Get("seen")
		return v
	}
	t.Run("url", func(t *testing.T) {
		srv := startServer(t, t.TempDir(), 0)
		text := fmt.Sprintf(countYAML, srv.ClientURL())
		dir := t.TempDir()
		assert.EqualValues(t, 1, count(t, dir, text))
		assert.EqualValues(t, 2, count(t, dir, text), "restored after a reload")
	})
	t.Run("embedded", func(t *testing.T) {
		text := strings.Replace(countYAML, "url: %s, bucket: counts", "listen: 127.0.0.1:0", 1)
		dir := t.TempDir()
		assert.EqualValues(t, 1, count(t, dir, text))
		assert.EqualValues(t, 2, count(t, dir, text), "restored after the embedded server restarted")
		_, err := os.Stat(filepath.Join(dir, "nats", "jetstream"))
		assert.NoError(t, err, "the embedded server stores under the data folder")
	})
}

// TestSpecErrors: misplaced or wrong nats settings are positioned errors.
func TestSpecErrors(t *testing.T) {
	dir := t.TempDir()
	for text, want := range map[string]string{
		"state: {kv: {backend: sqlite, url: nats://127.0.0.1:4222}}": `flows.yaml:3:38: provider "state": kv: url: only backend nats has a url`,
		"state: {kv: {bucket: b}}":                                   `flows.yaml:3:24: provider "state": kv: bucket: only backend nats has a bucket`,
		"state: {kv: {backend: nats, bucket: a.b}}":                  `flows.yaml:3:39: provider "state": kv: bucket: "a.b" is not a bucket name`,
		"state: {kv: {backend: nats, url: http://x}}":                `flows.yaml:3:36: provider "state": kv: url: "http://x" is not a NATS URL`,
		"state: {kv: {backend: nats, path: x.db}}":                   `provider "state": kv: path: only backend sqlite has a path`,
	} {
		_, err := loadFile(t, dir, "version: 1\nproviders:\n  "+text+"\nflows:\n  f:\n    steps:\n      - save: {key: k, value: '1'}\n")
		require.Error(t, err, text)
		assert.Contains(t, err.Error(), want, text)
	}
}

// TestSharesEmbeddedServer: without url, the backend uses the embedded
// server that the process's other nats users of the data folder hold,
// and keeps values under the documented bucket and keys.
func TestSharesEmbeddedServer(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	conn, err := nats.Connect(ctx, "test", nil, "127.0.0.1:0", dir, nil)
	require.NoError(t, err)
	defer conn.Close()
	s, err := natskv.Open(ctx, natskv.Options{DataDir: dir, Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Scope("orders", "poller").Save(ctx, "last_id", 41))

	bucket, err := conn.JetStream().KeyValue(ctx, natskv.DefaultBucket)
	require.NoError(t, err, "the bucket is on the server the other user holds")
	e, err := bucket.Get(ctx, "orders/poller.last_5Fid")
	require.NoError(t, err)
	assert.Equal(t, "41", string(e.Value()))
}
