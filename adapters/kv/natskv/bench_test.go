package natskv_test

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/kv/natskv"
)

// BenchmarkSaveRestore: a Save and a Restore of a node through the
// backend, against the same round trips written by hand on the
// jetstream KeyValue API (BenchmarkSaveRestore/baseline); the ratio is
// the backend's overhead (key escaping, JSON, locking).
func BenchmarkSaveRestore(b *testing.B) {
	srv := startServer(b, b.TempDir(), 0)
	b.Run("baseline", func(b *testing.B) {
		nc, err := nats.Connect(srv.ClientURL())
		require.NoError(b, err)
		defer nc.Close()
		js, err := jetstream.New(nc)
		require.NoError(b, err)
		bucket, err := js.CreateKeyValue(b.Context(), jetstream.KeyValueConfig{Bucket: "base", Storage: jetstream.FileStorage, History: 1})
		require.NoError(b, err)
		for b.Loop() {
			if _, err := bucket.Put(b.Context(), "orders/poller.last_5Fid", []byte("41")); err != nil {
				b.Fatal(err)
			}
			if _, err := bucket.Get(b.Context(), "orders/poller.last_5Fid"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("natskv", func(b *testing.B) {
		s, err := natskv.Open(b.Context(), natskv.Options{URL: []string{srv.ClientURL()}, Bucket: "bench"})
		require.NoError(b, err)
		defer s.Close()
		n := s.Scope("orders", "poller")
		for b.Loop() {
			if err := n.Save(b.Context(), "last_id", 41); err != nil {
				b.Fatal(err)
			}
			if _, _, err := n.Restore(b.Context(), "last_id"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
