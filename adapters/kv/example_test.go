package kv_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/svcflow/svcflow/adapters/kv"
)

func ExampleOpenSQLite() {
	dir, _ := os.MkdirTemp("", "kv")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	path := filepath.Join(dir, "state.db")

	s, err := kv.OpenSQLite(path)
	if err != nil {
		panic(err)
	}
	poller := s.Scope("orders", "poller") // in a run: s.Node(ctx, "poller")
	_ = poller.Save(ctx, "last_id", 41)
	_ = s.Close()

	s, _ = kv.OpenSQLite(path) // a restart
	defer s.Close()
	last, found, _ := s.Scope("orders", "poller").Restore(ctx, "last_id")
	fmt.Println(last, found)
	_, found, _ = s.Scope("invoices", "poller").Restore(ctx, "last_id")
	fmt.Println("another channel:", found)
	// Output:
	// 41 true
	// another channel: false
}
