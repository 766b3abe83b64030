package mllp_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/mllp"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// BenchmarkMLLP measures a message's round trip (send, run a one-step
// flow, read the ACK) over connections kept open, with b.RunParallel's
// clients, each on a connection of its own:
//
//   - channel: the mllp source in front of a channel (memory store,
//     trace on): ID from the MSH, meta, store writes, ACK from the MSH;
//   - baseline: a hand-written TCP server that reads a frame, splits the
//     MSH for its control id, calls the same function and writes a
//     fixed-form ACK.
//
// Compare the two ns/op: go test -run '^$' -bench MLLP ./adapters/mllp
func BenchmarkMLLP(b *testing.B) {
	work := func(c *fc.Context) { c.Set("seen", true) }
	b.Run("channel", func(b *testing.B) {
		src, err := mllp.NewSource(mllp.Spec{Address: "127.0.0.1:0", MaxConnections: 1024}, mllp.WithLogger(quiet))
		if err != nil {
			b.Fatal(err)
		}
		if err := src.Listen(); err != nil {
			b.Fatal(err)
		}
		f := flow.New("hl7", flow.Step("work", func(_ context.Context, c *fc.Context) error { work(c); return nil })).MustBuild()
		ch, err := channel.New(channel.Config{Name: "hl7", Flow: f, Store: store.NewMemory(), Sources: []channel.Source{src}, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		if err := ch.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		defer ch.Stop(context.Background())
		roundTrips(b, src.Addr())
	})
	b.Run("baseline", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		defer wg.Wait()
		defer ln.Close()
		wg.Go(func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				wg.Go(func() { baselineServe(conn, work) })
			}
		})
		roundTrips(b, ln.Addr().String())
	})
}

// baselineServe answers each frame with an AA naming its control id.
func baselineServe(conn net.Conn, work func(*fc.Context)) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		if _, err := br.ReadBytes(mllp.StartBlock); err != nil {
			return
		}
		frame, err := br.ReadBytes(mllp.EndBlock)
		if err != nil {
			return
		}
		msh := frame
		if i := bytes.IndexByte(frame, '\r'); i >= 0 {
			msh = frame[:i]
		}
		f := bytes.Split(msh, []byte("|"))
		c := fc.FromMap(map[string]any{"body": string(frame[:len(frame)-1])})
		work(c)
		ack := fmt.Sprintf("MSH|^~\\&|%s|%s|%s|%s|||ACK|1|P|2.5\rMSA|AA|%s\r", f[4], f[5], f[2], f[3], f[9])
		if _, err := conn.Write(mllp.Frame([]byte(ack))); err != nil {
			return
		}
	}
}

var benchSeq atomic.Int64

// roundTrips sends b.N messages from parallel clients.
func roundTrips(b *testing.B, addr string) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		cl, err := mllp.Dial(context.Background(), addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer cl.Close()
		for pb.Next() {
			id := fmt.Sprintf("b-%d", benchSeq.Add(1))
			if _, err := cl.Send(context.Background(), []byte(adt(id, "Doe"))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
