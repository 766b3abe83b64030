// Package pypeman_test runs pypeman.yaml as flowrun serve runs it and
// asserts each behaviour a pypeman user relies on with real clients: the
// HTTP channel (passthrough lookup kept under store_output_as, a divert,
// toolkit steps, a drop, an answer without meta, outcome hooks, a
// counter saved across a restart), the MLLP channel's ACKs, and the
// watched folder's regex and trigger files.
package pypeman_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	_ "github.com/svcflow/svcflow/adapters/component/all" // the sources, stores and steps flowrun links
	"github.com/svcflow/svcflow/adapters/mllp"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/cmd/flowrun/cli"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// services is the CRM and the audit service the example calls.
type services struct {
	mu     sync.Mutex
	audits []map[string]any // POST /audit (the finally hook)
	alerts []map[string]any // POST /alert (the on_failure hook)
}

func (s *services) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/customers/acme":
		_, _ = io.WriteString(w, `{"tier": "gold"}`)
	case "/customers/spammer":
		_, _ = io.WriteString(w, `{"tier": "standard", "blocked": true}`)
	case "/customers/down":
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error": "database gone"}`)
	case "/audit", "/alert":
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		s.mu.Lock()
		if r.URL.Path == "/audit" {
			s.audits = append(s.audits, body)
		} else {
			s.alerts = append(s.alerts, body)
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error": "unknown customer"}`)
	}
}

// taken returns the audit and alert reports so far, and forgets them.
func (s *services) taken() (audits, alerts []map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	audits, alerts = s.audits, s.alerts
	s.audits, s.alerts = nil, nil
	return audits, alerts
}

// server is a flowrun serve of pypeman.yaml running in this process.
type server struct {
	http, mllp, inbox string
	cancel            context.CancelFunc
	done              chan int
	out, errOut       *bytes.Buffer
}

// start runs flowrun serve on pypeman.yaml with free ports, the services
// of svc and the data folder data, and waits until it is ready.
func start(t *testing.T, svc string, data, inbox string) *server {
	t.Helper()
	s := &server{http: freeAddr(t), mllp: freeAddr(t), inbox: inbox, done: make(chan int, 1),
		out: &bytes.Buffer{}, errOut: &bytes.Buffer{}}
	admin := freeAddr(t)
	args := []string{"serve", "pypeman.yaml", "--data", data, "--admin", admin, "--drain", "5s",
		"--set", "vars.crm=" + svc, "--set", "vars.audit=" + svc,
		"--set", "channels.orders.from.http.listen=" + s.http,
		"--set", "channels.adt.from.mllp.address=" + s.mllp,
		"--set", "channels.stock.from.files.dir=" + inbox,
		"--set", "channels.stock.from.files.settle=50ms"}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- cli.Run(ctx, args, cli.WithStdio(nil, s.out, s.errOut)) }()
	require.Eventually(t, func() bool {
		select {
		case code := <-s.done:
			s.done <- code
			return true
		default:
		}
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond)
	select {
	case code := <-s.done:
		t.Fatalf("flowrun serve exited %d: %s", code, s.errOut)
	default:
	}
	return s
}

// stop stops the server gracefully: flowrun serve exits 0.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	assert.Equal(t, cli.ExitOK, <-s.done, "%s", s.errOut)
}

// order posts an order; it returns the status, the answer's body and
// the message id the answer carries.
func (s *server) order(t *testing.T, body string) (int, string, string) {
	t.Helper()
	resp, err := http.Post("http://"+s.http+"/orders", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header.Get("X-Message-Id")
}

const (
	admission = "MSH|^~\\&|ADMIT|HOSP|LAB|HOSP|20260101120000||ADT^A01|ctl-1|P|2.5\rPID|1||123^^^HOSP||Doe^John\r"
	result    = "MSH|^~\\&|ADMIT|HOSP|LAB|HOSP|20260101120000||ORU^R01|ctl-2|P|2.5\rOBX|1|NM|GLU||5.4\r"
)

func TestScenario(t *testing.T) {
	svc := &services{}
	ts := httptest.NewServer(svc)
	defer ts.Close()
	data, inbox := t.TempDir(), t.TempDir()
	s := start(t, ts.URL, data, inbox)

	// 1. HTTP: the lookup's answer is kept under crm (passthrough +
	// store_output_as), the line out of stock is filtered out, the total
	// summed, the order numbered; the answer has the keys of
	// response.keys only: no meta, no crm, no customer.
	code, body, id := s.order(t, `{"customer": "acme", "items": [{"sku": "a", "price": 2, "qty": 3}, {"sku": "b", "price": 5, "qty": 0}]}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.JSONEq(t, `{"order_no": 1, "status": "accepted", "tier": "gold", "total": 6, "items": [{"sku": "a", "price": 2, "qty": 3}]}`, body)
	assert.NotEmpty(t, id, "the message id is in the X-Message-Id header")
	code, body, _ = s.order(t, `{"customer": "acme", "items": [{"sku": "c", "price": 1.5, "qty": 2}]}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.JSONEq(t, `{"order_no": 2, "status": "accepted", "tier": "gold", "total": 3, "items": [{"sku": "c", "price": 1.5, "qty": 2}]}`, body)

	// The divert: a blocked customer ends the flow there, successfully:
	// no filter, total or number; the answer's keys are those the
	// context holds.
	code, body, _ = s.order(t, `{"customer": "spammer", "items": [{"sku": "a", "price": 2, "qty": 3}]}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.JSONEq(t, `{"status": "blocked", "items": [{"sku": "a", "price": 2, "qty": 3}]}`, body)

	// A drop: 204, no body.
	code, body, _ = s.order(t, `{"customer": "ping", "items": []}`)
	assert.Equal(t, http.StatusNoContent, code)
	assert.Empty(t, body)

	// A Stop: 422 with the reason, no meta.
	code, body, _ = s.order(t, `{"customer": "acme", "items": [{"sku": "b", "price": 5, "qty": 0}]}`)
	assert.Equal(t, http.StatusUnprocessableEntity, code)
	assert.Contains(t, body, "no item in stock")
	assert.NotContains(t, body, "meta")

	// The CRM down: the order fails, on_failure alerts the audit service.
	code, body, failedID := s.order(t, `{"customer": "down", "items": [{"sku": "a", "price": 2, "qty": 3}]}`)
	assert.Equal(t, http.StatusServiceUnavailable, code, body)
	assert.NotContains(t, body, "database gone", "the CRM's answer stays inside")

	// The hooks ran before each answer: finally for every settled order,
	// on_failure for the failed one only.
	audits, alerts := svc.taken()
	var kinds []any
	for _, a := range audits {
		kinds = append(kinds, a["kind"])
	}
	assert.Equal(t, []any{"ok", "ok", "ok", "dropped", "stop", "retry-exhausted"}, kinds)
	assert.Equal(t, id, audits[0]["id"])
	require.Len(t, alerts, 1)
	assert.Equal(t, failedID, alerts[0]["id"])
	assert.Contains(t, alerts[0]["error"], "500")

	// 2. MLLP: an admission is answered AA with its control id; another
	// message type AR with the Stop's reason.
	ctx := context.Background()
	ack, err := mllp.Send(ctx, s.mllp, []byte(admission))
	require.NoError(t, err)
	assert.Equal(t, "AA", ack.Code)
	assert.Equal(t, "ctl-1", ack.ControlID)
	assert.Equal(t, "ACK^A01^ACK", ack.Header.Type)
	ack, err = mllp.Send(ctx, s.mllp, []byte(result))
	require.ErrorIs(t, err, mllp.ErrRejected)
	assert.Equal(t, "AR", ack.Code)
	assert.Equal(t, "ctl-2", ack.ControlID)
	assert.Equal(t, `only admissions (ADT\S\A01)`, ack.Text, "the reason, HL7-escaped (^ is \\S\\)")

	// 3. The folder: stock-1.csv is taken once stock-1.ok appears (the
	// trigger is removed after); a name the regex refuses, and a stock
	// file without its trigger, stay.
	write := func(name, content string) {
		require.NoError(t, os.WriteFile(filepath.Join(inbox, name), []byte(content), 0o644))
	}
	write("stock-1.csv", "sku,qty\na,3\nb,4\n")
	write("stock-2.csv", "sku,qty\nc,1\n")
	write("notes.csv", "sku,qty\nz,9\n")
	write("stock-1.ok", "")
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(inbox, "done", "stock-1.csv"))
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "stock-1.csv moved to done/")
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(inbox, "stock-1.ok"))
		return os.IsNotExist(err)
	}, 30*time.Second, 20*time.Millisecond, "the trigger file is removed")
	for _, name := range []string{"stock-2.csv", "notes.csv"} {
		_, err := os.Stat(filepath.Join(inbox, name))
		assert.NoError(t, err, "%s stays", name)
	}
	s.stop(t)

	// 4. A restart: the numbering goes on, the counter is in the data
	// folder.
	s = start(t, ts.URL, data, inbox)
	code, body, _ = s.order(t, `{"customer": "acme", "items": [{"sku": "a", "price": 2, "qty": 1}]}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.JSONEq(t, `{"order_no": 3, "status": "accepted", "tier": "gold", "total": 2, "items": [{"sku": "a", "price": 2, "qty": 1}]}`, body)
	s.stop(t)
	_, err = os.Stat(filepath.Join(data, "state.db"))
	assert.NoError(t, err, "the kv provider's file is in the data folder")

	// 5. The stores: the stock file's rows, each order's outcome; the
	// stored context keeps the lookup under crm.
	st, err := serve.OpenStore(nil, "sqlite:"+filepath.Join(data, "stock.db"))
	require.NoError(t, err)
	recs, err := st.Search(ctx, store.Query{})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.Len(t, recs, 1)
	assert.Equal(t, store.Done, recs[0].State)
	assert.Equal(t, "stock-1.csv", recs[0].Message.Meta["file.name"])
	assert.EqualValues(t, 7, recs[0].Message.Context["units"])
	assert.Len(t, recs[0].Message.Context["rows"], 2)

	st, err = serve.OpenStore(nil, "sqlite:"+filepath.Join(data, "orders.db"))
	require.NoError(t, err)
	defer st.Close()
	rec, err := st.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, store.Done, rec.State)
	assert.Equal(t, "accepted", rec.Message.Context["status"])
	dropped, err := st.Count(ctx, store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	assert.Equal(t, 5, dropped, "three accepted, one diverted, one dropped")
	rec, err = st.Get(ctx, failedID)
	require.NoError(t, err)
	assert.Equal(t, store.Error, rec.State)
}

// TestValidateAndTest: flowrun validate and flowrun test pass on the
// example.
func TestValidateAndTest(t *testing.T) {
	for _, args := range [][]string{{"validate", "pypeman.yaml"}, {"test", "pypeman.yaml"}} {
		var out, errOut bytes.Buffer
		code := cli.Run(context.Background(), args, cli.WithStdio(nil, &out, &errOut))
		assert.Equal(t, cli.ExitOK, code, "%v: %s%s", args, out.String(), errOut.String())
		assert.NotContains(t, out.String(), "FAIL")
	}
	_, err := os.Stat("state.db")
	assert.True(t, os.IsNotExist(err), "flowrun test stubs the counter: no file is made")
}
