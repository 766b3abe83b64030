package mllp_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/channel"
	_ "github.com/svcflow/svcflow/adapters/component/all"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/mllp"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

// adt is an ADT^A01 message with control id id and a PID name.
func adt(id, name string) string {
	return "MSH|^~\\&|ADMIT|HOSP|LAB|HOSP|20260101120000||ADT^A01^ADT_A01|" + id + "|P|2.5\r" +
		"EVN|A01|20260101120000\r" +
		"PID|1||" + id + "^^^HOSP||" + name + "^Ann\r"
}

// newChannel runs a flow over HL7 messages behind an MLLP source: a PID
// name "reject" is rejected, "fail" fails.
func newChannel(t *testing.T, spec mllp.Spec, st store.Store) (*channel.Channel, *mllp.Source, *atomic.Int64) {
	t.Helper()
	if spec.Address == "" {
		spec.Address = "127.0.0.1:0"
	}
	src, err := mllp.NewSource(spec, mllp.WithLogger(quiet))
	require.NoError(t, err)
	require.NoError(t, src.Listen())
	var runs atomic.Int64
	f := flow.New("hl7", flow.Step("check", func(ctx context.Context, c *fc.Context) error {
		runs.Add(1)
		body, _ := c.Get("body")
		switch {
		case strings.Contains(body.(string), "|reject^"):
			return errors.Stop("unknown patient")
		case strings.Contains(body.(string), "|fail^"):
			return errors.New("database down")
		}
		meta, _ := c.Get("meta")
		c.Set("type", meta.(map[string]any)[mllp.MetaType])
		return nil
	})).MustBuild()
	ch, err := channel.New(channel.Config{Name: "hl7", Flow: f, Store: st, Sources: []channel.Source{src}, Logger: quiet})
	require.NoError(t, err)
	require.NoError(t, ch.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, ch.Stop(context.Background())) })
	return ch, src, &runs
}

func TestHeaderAndAck(t *testing.T) {
	msg := "MSH#$~\\&#APP#FAC#RCV#RFAC#20260101##ORU$R01#c-9#T#2.3\rOBX#1\r"
	h, err := mllp.ParseHeader([]byte(msg))
	require.NoError(t, err)
	assert.Equal(t, byte('#'), h.FieldSep)
	assert.Equal(t, `$~\&`, h.Encoding)
	assert.Equal(t, "ORU$R01", h.MessageType())
	assert.Equal(t, "ORU", h.MessageCode())
	assert.Equal(t, "R01", h.TriggerEvent())
	assert.Equal(t, "c-9", h.ControlID)
	assert.Equal(t, "APP", h.SendingApp)
	assert.Equal(t, "RFAC", h.ReceivingFacility)
	assert.Equal(t, "2.3", h.Version)

	ack := mllp.Ack(h, mllp.AE, "bad # field $ here")
	segs := mllp.Segments(ack)
	require.Len(t, segs, 2)
	f := strings.Split(string(segs[0]), "#")
	assert.Equal(t, []string{"MSH", `$~\&`, "RCV", "RFAC", "APP", "FAC"}, f[:6], "sender and receiver swapped")
	assert.Equal(t, "ACK$R01$ACK", f[8])
	assert.Equal(t, "T", f[10])
	assert.Equal(t, "2.3", f[11])
	assert.Equal(t, `MSA#AE#c-9#bad \F\ field \S\ here`, string(segs[1]), "the text escaped")
	info, err := mllp.ParseAck(ack)
	require.NoError(t, err)
	assert.Equal(t, "AE", info.Code)
	assert.Equal(t, "c-9", info.ControlID)

	for _, bad := range []string{"", "PID|1", "MSH", "MSHA^~", "MSH\rPID|1"} {
		_, err := mllp.ParseHeader([]byte(bad))
		assert.ErrorIs(t, err, mllp.ErrNoMSH, "%q", bad)
	}
}

// TestConcurrentMessages: 1,000 messages sent at once, each on a
// connection of its own, then 1,000 more over 100 connections, 10 in a
// row on each, are each acknowledged AA with their own control id and
// run once.
func TestConcurrentMessages(t *testing.T) {
	st := store.NewMemory()
	_, src, runs := newChannel(t, mllp.Spec{MaxConnections: 1000}, st)
	send(t, src.Addr(), "one", 1000, 1)
	send(t, src.Addr(), "ten", 100, 10)
	assert.EqualValues(t, 2000, runs.Load())
	n, err := st.Count(context.Background(), store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	assert.Equal(t, 2000, n)
}

// send sends conns*each messages at once: each connection sends each in
// a row.
func send(t *testing.T, addr, prefix string, conns, each int) {
	var wg sync.WaitGroup
	errs := make(chan error, conns*each)
	for c := range conns {
		wg.Go(func() {
			cl, err := mllp.Dial(t.Context(), addr)
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			for i := range each {
				id := fmt.Sprintf("%s-%d-%d", prefix, c, i)
				ack, err := cl.Send(t.Context(), []byte(adt(id, "Doe")))
				if err != nil {
					errs <- err
					return
				}
				if ack.Code != "AA" || ack.ControlID != id {
					errs <- fmt.Errorf("%s: got %s for %s", id, ack.Code, ack.ControlID)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestOutcomes: done is AA, a Stop is AR with its reason, a failure AE
// with an error id; a message sent again (same sender and control id) is
// answered from the store and not run again; the meta holds the MSH.
func TestOutcomes(t *testing.T) {
	st := store.NewMemory()
	_, src, runs := newChannel(t, mllp.Spec{}, st)
	ack, err := mllp.Send(t.Context(), src.Addr(), []byte(adt("ok-1", "Doe")))
	require.NoError(t, err)
	assert.Equal(t, "AA", ack.Code)
	assert.Equal(t, "ADMIT", ack.Header.ReceivingApp, "the ACK goes back to the sender")
	assert.Equal(t, "ACK^A01^ACK", ack.Header.Type)

	ack, err = mllp.Send(t.Context(), src.Addr(), []byte(adt("ok-1", "Doe")))
	require.NoError(t, err, "sent again")
	assert.Equal(t, "AA", ack.Code)
	assert.EqualValues(t, 1, runs.Load(), "answered from the store")

	ack, err = mllp.Send(t.Context(), src.Addr(), []byte(adt("r-1", "reject")))
	require.ErrorIs(t, err, mllp.ErrRejected)
	assert.Equal(t, "AR", ack.Code)
	assert.Equal(t, "unknown patient", ack.Text)

	ack, err = mllp.Send(t.Context(), src.Addr(), []byte(adt("f-1", "fail")))
	require.ErrorIs(t, err, mllp.ErrApplication)
	assert.Equal(t, "AE", ack.Code)
	assert.Contains(t, ack.Text, "error id")
	assert.NotContains(t, ack.Text, "database", "internals stay inside")

	ack, err = mllp.Send(t.Context(), src.Addr(), []byte(adt("ok-1", "Other")))
	require.ErrorIs(t, err, mllp.ErrRejected, "the same control id with other content")
	assert.Contains(t, ack.Text, "reused")

	rec, err := st.Get(context.Background(), mllp.MessageID(mllp.Header{SendingApp: "ADMIT", SendingFacility: "HOSP", ControlID: "ok-1"}))
	require.NoError(t, err)
	assert.Equal(t, mllp.ContentType, rec.Message.ContentType)
	assert.Equal(t, "ADT^A01", rec.Message.Meta[mllp.MetaType])
	assert.Equal(t, "ok-1", rec.Message.Meta[mllp.MetaControlID])
	assert.Equal(t, "HOSP", rec.Message.Meta[mllp.MetaSendingFacility])
	assert.Equal(t, "2.5", rec.Message.Meta[mllp.MetaVersion])
	assert.Equal(t, "ADT^A01", rec.Message.Context["type"])
}

// rawConn is a test client speaking bytes.
func rawConn(t *testing.T, addr string) (net.Conn, *mllp.FrameReader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	return c, mllp.NewFrameReader(c, 1<<20)
}

func ackOf(t *testing.T, fr *mllp.FrameReader) *mllp.AckInfo {
	t.Helper()
	raw, err := fr.Next()
	require.NoError(t, err)
	a, err := mllp.ParseAck(raw)
	require.NoError(t, err)
	return a
}

// closed reports whether the server closed the connection.
func closed(t *testing.T, c net.Conn) {
	t.Helper()
	_, err := bufio.NewReader(c).ReadByte()
	require.ErrorIs(t, err, io.EOF)
}

// TestMalformedFraming: bytes outside frames are discarded (a frame after
// them is answered), a start byte inside a frame starts it again, text
// without MSH is answered AR; too much noise disconnects.
func TestMalformedFraming(t *testing.T) {
	_, src, runs := newChannel(t, mllp.Spec{MaxSize: 4096}, store.NewMemory())
	c, fr := rawConn(t, src.Addr())

	_, err := c.Write(append([]byte("\r\nnoise before\n"), mllp.Frame([]byte(adt("a-1", "Doe")))...))
	require.NoError(t, err)
	a := ackOf(t, fr)
	assert.Equal(t, "AA", a.Code)
	assert.Equal(t, "a-1", a.ControlID)

	frame := append([]byte{mllp.StartBlock}, "half a messa"...)
	frame = append(frame, mllp.Frame([]byte(adt("a-2", "Doe")))...)
	_, err = c.Write(frame)
	require.NoError(t, err)
	a = ackOf(t, fr)
	assert.Equal(t, "a-2", a.ControlID, "the second start began the frame again")

	_, err = c.Write(mllp.Frame([]byte("hello, not HL7")))
	require.NoError(t, err)
	a = ackOf(t, fr)
	assert.Equal(t, "AR", a.Code)
	assert.Contains(t, a.Text, "MSH")
	assert.EqualValues(t, 2, runs.Load())

	_, err = c.Write([]byte(strings.Repeat("x", 5000))) // noise over max_size
	require.NoError(t, err)
	closed(t, c)
}

// TestOversized: a message over max_size is answered AR with its control
// id, then the connection is closed; the flow does not run.
func TestOversized(t *testing.T) {
	_, src, runs := newChannel(t, mllp.Spec{MaxSize: 1024}, store.NewMemory())
	c, fr := rawConn(t, src.Addr())
	big := adt("big-1", "Doe") + "NTE|1||" + strings.Repeat("y", 4000) + "\r"
	_, err := c.Write(mllp.Frame([]byte(big)))
	require.NoError(t, err)
	a := ackOf(t, fr)
	assert.Equal(t, "AR", a.Code)
	assert.Equal(t, "big-1", a.ControlID)
	assert.Contains(t, a.Text, "larger than 1024 bytes")
	closed(t, c)
	assert.EqualValues(t, 0, runs.Load())

	_, err = mllp.Send(t.Context(), src.Addr(), []byte(adt("small-1", "Doe")))
	require.NoError(t, err, "other connections are served")
}

// TestSlowClients: a client that begins a message and stalls is
// disconnected after message_timeout; an idle one after read_timeout;
// others are served meanwhile.
func TestSlowClients(t *testing.T) {
	_, src, _ := newChannel(t, mllp.Spec{MessageTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond}, store.NewMemory())
	stalled, _ := rawConn(t, src.Addr())
	_, err := stalled.Write([]byte{mllp.StartBlock, 'M', 'S', 'H'})
	require.NoError(t, err)
	idle, _ := rawConn(t, src.Addr())

	ack, err := mllp.Send(t.Context(), src.Addr(), []byte(adt("fast-1", "Doe")))
	require.NoError(t, err)
	assert.Equal(t, "AA", ack.Code)
	closed(t, stalled)
	closed(t, idle)
}

// TestStopAnswersInFlight: stopping the channel while a message runs
// answers it, then closes the connections and the listener.
func TestStopAnswersInFlight(t *testing.T) {
	src, err := mllp.NewSource(mllp.Spec{Address: "127.0.0.1:0"}, mllp.WithLogger(quiet))
	require.NoError(t, err)
	require.NoError(t, src.Listen())
	addr := src.Addr()
	entered, release := make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		done <- src.Run(ctx, channel.HandlerFunc(func(_ context.Context, m *message.Message) channel.Result {
			close(entered)
			<-release
			return channel.Result{Settle: channel.Ack, State: store.Done, Message: m}
		}))
	}()
	c, fr := rawConn(t, addr)
	_, err = c.Write(mllp.Frame([]byte(adt("s-1", "Doe"))))
	require.NoError(t, err)
	<-entered
	cancel()
	close(release)
	a := ackOf(t, fr)
	assert.Equal(t, "AA", a.Code)
	closed(t, c)
	require.NoError(t, <-done)
	_, err = net.Dial("tcp", addr)
	assert.Error(t, err, "no longer listening")
}

// TestStep: the mllp step sends the context's message and keeps the ACK;
// AR is a Stop, AE a Retry error, a receiver that is down a Retry error.
func TestStep(t *testing.T) {
	_, src, _ := newChannel(t, mllp.Spec{}, store.NewMemory())
	cfg := loadString(t, `version: 1
flows:
  relay:
    input: [body]
    retry: {max_attempts: 1}
    steps:
      - mllp: {address: "`+src.Addr()+`", into: ack}
`)
	f, ok := cfg.Flow("relay")
	require.True(t, ok)
	out, err := f.Run(t.Context(), map[string]any{"body": adt("st-1", "Doe")})
	require.NoError(t, err)
	ack := out.Map()["ack"].(map[string]any)
	assert.Equal(t, "AA", ack["code"])
	assert.Equal(t, "st-1", ack["control_id"])

	out, err = f.Run(t.Context(), map[string]any{"body": adt("st-2", "reject")})
	assert.Equal(t, errors.KindStop, errors.KindOf(err), "%v", err)
	assert.ErrorIs(t, err, mllp.ErrRejected)
	assert.Equal(t, "AR", out.Map()["ack"].(map[string]any)["code"])

	_, err = f.Run(t.Context(), map[string]any{"body": adt("st-3", "fail")})
	assert.ErrorIs(t, err, mllp.ErrApplication)
	assert.ErrorIs(t, err, errors.ErrRetry)

	_, err = f.Run(t.Context(), map[string]any{"body": "not hl7"})
	assert.Equal(t, errors.KindStop, errors.KindOf(err))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := ln.Addr().String()
	require.NoError(t, ln.Close())
	cfg = loadString(t, `version: 1
flows:
  relay:
    input: [body]
    retry: {max_attempts: 1}
    steps:
      - mllp: {address: "`+down+`", timeout: 2s}
`)
	f, _ = cfg.Flow("relay")
	_, err = f.Run(t.Context(), map[string]any{"body": adt("st-4", "Doe")})
	assert.ErrorIs(t, err, errors.ErrRetry)
	assert.Contains(t, err.Error(), down)
}

func loadString(t *testing.T, text string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "serve.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	cfg, err := config.Load([]string{path})
	require.NoError(t, err)
	return cfg
}

// TestServeYAML: an mllp channel from YAML under serve, with a relay to
// another MLLP receiver; an address in use stops serve.
func TestServeYAML(t *testing.T) {
	_, downstream, _ := newChannel(t, mllp.Spec{}, store.NewMemory())
	cfg := loadString(t, `version: 1
flows:
  relay:
    input: [body, meta]
    steps:
      - stop: {if: "meta['hl7.type'] != 'ADT^A01'", reason: "only admissions"}
      - mllp: {address: "`+downstream.Addr()+`", into: lab_ack}
channels:
  adt:
    from: {mllp: {address: "127.0.0.1:0", max_size: 65536, read_timeout: 1m}}
    flow: relay
    store: memory
`)
	s, err := serve.New(cfg, serve.Options{DataDir: t.TempDir(), Admin: "off", Logger: quiet})
	require.NoError(t, err)
	require.NoError(t, s.Listen())
	addr := s.Addrs()["mllp 127.0.0.1:0"]
	require.NotEmpty(t, addr)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	var ack *mllp.AckInfo
	require.Eventually(t, func() bool {
		ack, err = mllp.Send(t.Context(), addr, []byte(adt("y-1", "Doe")))
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, "AA", ack.Code)
	_, err = mllp.Send(t.Context(), addr, []byte(adt("y-2", "reject")))
	assert.ErrorIs(t, err, mllp.ErrRejected, "the downstream's AR rejects the message upstream")
	oru := strings.Replace(adt("y-3", "Doe"), "ADT^A01^ADT_A01", "ORU^R01", 1)
	ack, err = mllp.Send(t.Context(), addr, []byte(oru))
	assert.ErrorIs(t, err, mllp.ErrRejected)
	assert.Equal(t, "only admissions", ack.Text)

	// A second serve on the address in use fails at once, naming it.
	cfg2 := loadString(t, `version: 1
flows:
  f:
    steps: [{set: {x: "1"}}]
channels:
  adt:
    from: {mllp: "`+addr+`"}
    flow: f
    store: memory
`)
	s2, err := serve.New(cfg2, serve.Options{DataDir: t.TempDir(), Admin: "off", Logger: quiet})
	require.NoError(t, err)
	err = s2.Run(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), addr)
	cancel()
	require.NoError(t, <-done)
}

// TestSpecErrors: spec errors at file:line:col, from validate.
func TestSpecErrors(t *testing.T) {
	cfg := loadString(t, `version: 1
flows:
  f:
    steps: [{set: {x: "1"}}]
channels:
  adt:
    from: {mllp: {address: "127.0.0.1:0", max_size: big, ids: serial}}
    flow: f
    store: memory
`)
	err := serve.Check(cfg, serve.Options{DataDir: t.TempDir()})
	require.Error(t, err)
	t.Log(err)
	for _, want := range []string{
		`serve.yaml:7:53: channel "adt": from: mllp: max_size: expected an integer, got "big"`,
		`serve.yaml:7:63: channel "adt": from: mllp: ids: expected control_id or random, got "serial"`,
	} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = config.Load([]string{writeFile(t, `version: 1
flows:
  f:
    steps:
      - mllp: {into: ack}
`)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `serve.yaml:5:15: mllp: missing address`)
}

func writeFile(t *testing.T, text string) string {
	path := filepath.Join(t.TempDir(), "serve.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

// TestMaxConnections: a connection beyond max_connections is closed at
// once; the ones served go on.
func TestMaxConnections(t *testing.T) {
	_, src, _ := newChannel(t, mllp.Spec{MaxConnections: 1}, store.NewMemory())
	first, err := mllp.Dial(t.Context(), src.Addr())
	require.NoError(t, err)
	defer first.Close()
	_, err = first.Send(t.Context(), []byte(adt("c-1", "Doe")))
	require.NoError(t, err)
	extra, _ := rawConn(t, src.Addr())
	closed(t, extra)
	_, err = first.Send(t.Context(), []byte(adt("c-2", "Doe")))
	require.NoError(t, err)
}
