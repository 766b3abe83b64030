package filewatch

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	flowerrors "github.com/svcflow/svcflow/errors"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wait bounds every wait on the watcher; tests never sleep.
const wait = 10 * time.Second

// quick are the options of every test: short delays, no logs.
func quick(extra ...Option) []Option {
	return append([]Option{
		WithSettleDelay(30 * time.Millisecond),
		WithRescanInterval(100 * time.Millisecond),
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	}, extra...)
}

// collector is a handler that sends every message to a channel and
// answers with result (Ack when nil).
type collector struct {
	got    chan *message.Message
	result func(m *message.Message) channel.Result
}

func newCollector(result func(m *message.Message) channel.Result) *collector {
	return &collector{got: make(chan *message.Message, 100), result: result}
}

func (c *collector) Handle(_ context.Context, m *message.Message) channel.Result {
	c.got <- m
	if c.result != nil {
		return c.result(m)
	}
	return channel.Result{Settle: channel.Ack, State: "done", Message: m}
}

// next returns the next handled message.
func (c *collector) next(t *testing.T) *message.Message {
	t.Helper()
	select {
	case m := <-c.got:
		return m
	case <-time.After(wait):
		t.Fatal("no file was handed to the handler")
		return nil
	}
}

// none checks that nothing more was handled.
func (c *collector) none(t *testing.T) {
	t.Helper()
	select {
	case m := <-c.got:
		t.Fatalf("unexpected message for %s", m.Meta[MetaName])
	default:
	}
}

// start runs a watcher of dir with h until the returned stop is called
// (or the test ends); stop waits for Run and checks it returned nil.
func start(t *testing.T, src channel.Source, h channel.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

func newSource(t *testing.T, dir string, opts ...Option) *source {
	t.Helper()
	src, err := New(dir, quick(opts...)...)
	require.NoError(t, err)
	return src.(*source)
}

func write(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// eventuallyExists waits until path exists (a file system event).
func eventuallyExists(t *testing.T, path string) {
	t.Helper()
	require.Eventually(t, func() bool { return exists(path) }, wait, 5*time.Millisecond, "%s never appeared", path)
}

func TestDroppedFileIsHandledAndMovedToDone(t *testing.T) {
	dir := t.TempDir()
	src := newSource(t, dir)
	assert.Equal(t, "file "+dir, src.Name())
	h := newCollector(nil)
	start(t, src, h)

	path := filepath.Join(dir, "order.json")
	write(t, path, `{"order":42}`)
	fi, err := os.Stat(path)
	require.NoError(t, err)

	m := h.next(t)
	assert.Equal(t, `{"order":42}`, string(m.Payload))
	assert.Equal(t, "application/json", m.ContentType)
	assert.Equal(t, FileID("order.json", []byte(`{"order":42}`)), m.ID)
	assert.Equal(t, map[string]string{
		MetaName:    "order.json",
		MetaPath:    path,
		MetaSize:    "12",
		MetaModTime: fi.ModTime().UTC().Format(time.RFC3339Nano),
	}, m.Meta)

	eventuallyExists(t, filepath.Join(dir, "done", "order.json"))
	assert.False(t, exists(path))
	h.none(t)
}

func TestFailedFileIsMovedWithErrorReport(t *testing.T) {
	dir := t.TempDir()
	failed := filepath.Join(t.TempDir(), "failures")
	h := newCollector(func(m *message.Message) channel.Result {
		return channel.Result{Settle: channel.Fail, Outcome: flowerrors.KindFailed, State: "error", Message: m,
			Err: errors.New("step total: price is not a number"), ErrorID: "E-7"}
	})
	start(t, newSource(t, dir, WithFailedDir(failed)), h)

	write(t, filepath.Join(dir, "bad.json"), `{"price":"x"}`)
	m := h.next(t)

	report := filepath.Join(failed, "bad.json"+ErrorFileSuffix)
	eventuallyExists(t, report)
	assert.FileExists(t, filepath.Join(failed, "bad.json"))
	assert.False(t, exists(filepath.Join(dir, "bad.json")))
	text, err := os.ReadFile(report)
	require.NoError(t, err)
	assert.Contains(t, string(text), "error: step total: price is not a number\n")
	assert.Contains(t, string(text), "error_id: E-7\n")
	assert.Contains(t, string(text), "outcome: failed\n")
	assert.Contains(t, string(text), "state: error\n")
	assert.Contains(t, string(text), "message_id: "+m.ID+"\n")
	assert.Contains(t, string(text), "file: bad.json\n")
	assert.NoDirExists(t, filepath.Join(dir, "failed"), "the default failed folder is not used")
	h.none(t)
}

func TestGlobFiltersFiles(t *testing.T) {
	dir := t.TempDir()
	src := newSource(t, dir, WithGlob("*.json"))
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	src.observed = func(name string, _ int64) {
		mu.Lock()
		seen[name] = true
		mu.Unlock()
	}
	write(t, filepath.Join(dir, "before.txt"), "no")
	h := newCollector(nil)
	start(t, src, h)
	write(t, filepath.Join(dir, "notes.txt"), "no")
	write(t, filepath.Join(dir, ".partial.json"), "{}")
	write(t, filepath.Join(dir, "take.json"), "{}")

	assert.Equal(t, "take.json", h.next(t).Meta[MetaName])
	eventuallyExists(t, filepath.Join(dir, "done", "take.json"))
	for _, name := range []string{"before.txt", "notes.txt", ".partial.json"} {
		assert.FileExists(t, filepath.Join(dir, name))
	}
	mu.Lock()
	assert.Equal(t, map[string]bool{"take.json": true}, seen, "files that do not match are never looked at")
	mu.Unlock()
	h.none(t)
}

func TestFilePresentBeforeStart(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "early.txt"), "hello")
	h := newCollector(nil)
	start(t, newSource(t, dir), h)
	m := h.next(t)
	assert.Equal(t, "early.txt", m.Meta[MetaName])
	assert.Equal(t, "text/plain; charset=utf-8", m.ContentType)
	eventuallyExists(t, filepath.Join(dir, "done", "early.txt"))
}

func TestRestartDoesNotReprocessDoneFiles(t *testing.T) {
	dir := t.TempDir()
	first := newCollector(nil)
	stop := start(t, newSource(t, dir), first)
	write(t, filepath.Join(dir, "a.txt"), "a")
	assert.Equal(t, "a.txt", first.next(t).Meta[MetaName])
	eventuallyExists(t, filepath.Join(dir, "done", "a.txt"))
	stop()

	second := newCollector(nil)
	start(t, newSource(t, dir), second)
	write(t, filepath.Join(dir, "b.txt"), "b")
	assert.Equal(t, "b.txt", second.next(t).Meta[MetaName])
	eventuallyExists(t, filepath.Join(dir, "done", "b.txt"))
	second.none(t)
	first.none(t)
	entries, err := os.ReadDir(filepath.Join(dir, "done"))
	require.NoError(t, err)
	assert.Len(t, entries, 2)
}

func TestLeftFileIsOfferedAgainAtNextStartWithSameID(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "owed.json")
	write(t, path, `{"n":1}`)

	first := newCollector(func(m *message.Message) channel.Result {
		return channel.Result{Settle: channel.Leave, State: "processing", Message: m}
	})
	stop := start(t, newSource(t, dir), first)
	left := first.next(t)
	stop() // Run returns once the file is settled: it stays in place
	assert.FileExists(t, path)
	first.none(t)

	second := newCollector(nil)
	start(t, newSource(t, dir), second)
	again := second.next(t)
	assert.Equal(t, left.ID, again.ID)
	eventuallyExists(t, filepath.Join(dir, "done", "owed.json"))
}

func TestNackedFileIsRetried(t *testing.T) {
	dir := t.TempDir()
	var calls int
	h := newCollector(func(m *message.Message) channel.Result {
		calls++ // the handler is never called concurrently with concurrency 1
		if calls == 1 {
			return channel.Result{Settle: channel.Nack, State: "error", Message: m, RetryAfter: 20 * time.Millisecond}
		}
		return channel.Result{Settle: channel.Ack, State: "done", Message: m}
	})
	start(t, newSource(t, dir), h)
	write(t, filepath.Join(dir, "flaky.txt"), "x")
	a, b := h.next(t), h.next(t)
	assert.Equal(t, a.ID, b.ID)
	eventuallyExists(t, filepath.Join(dir, "done", "flaky.txt"))
	h.none(t)
}

func TestPartialWriteIsReadWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.txt")
	half, rest := "first half;", "second half"
	src := newSource(t, dir)
	sawHalf, appended := make(chan struct{}), make(chan struct{})
	var once sync.Once
	src.observed = func(name string, size int64) {
		if name == "big.txt" && size == int64(len(half)) {
			// The watcher saw the half-written file: finish writing it
			// before the watcher looks again.
			once.Do(func() {
				close(sawHalf)
				<-appended
			})
		}
	}
	h := newCollector(nil)
	start(t, src, h)

	write(t, path, half)
	select {
	case <-sawHalf:
	case <-time.After(wait):
		t.Fatal("the watcher never saw the half-written file")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(rest)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	close(appended)

	m := h.next(t)
	assert.Equal(t, half+rest, string(m.Payload))
	assert.Equal(t, strconv.Itoa(len(half+rest)), m.Meta[MetaSize])
	eventuallyExists(t, filepath.Join(dir, "done", "big.txt"))
	h.none(t)
}

func TestFileRewrittenWhileHandledIsOfferedAgain(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "live.txt")
	var calls int
	h := newCollector(func(m *message.Message) channel.Result {
		calls++
		if calls == 1 { // the writer replaces the content meanwhile
			assert.NoError(t, os.WriteFile(path, []byte("version 2, longer"), 0o644))
		}
		return channel.Result{Settle: channel.Ack, State: "done", Message: m}
	})
	start(t, newSource(t, dir), h)
	write(t, path, "version 1")
	first, second := h.next(t), h.next(t)
	assert.Equal(t, "version 1", string(first.Payload))
	assert.Equal(t, "version 2, longer", string(second.Payload))
	assert.NotEqual(t, first.ID, second.ID)
	eventuallyExists(t, filepath.Join(dir, "done", "live.txt"))
	got, err := os.ReadFile(filepath.Join(dir, "done", "live.txt"))
	require.NoError(t, err)
	assert.Equal(t, "version 2, longer", string(got))
	h.none(t)
}

func TestNameClashInDoneFolder(t *testing.T) {
	dir := t.TempDir()
	done := filepath.Join(dir, "done")
	require.NoError(t, os.Mkdir(done, 0o755))
	write(t, filepath.Join(done, "r.csv"), "old")
	write(t, filepath.Join(done, "r-1.csv"), "older")
	h := newCollector(nil)
	start(t, newSource(t, dir), h)
	write(t, filepath.Join(dir, "r.csv"), "new")
	assert.Equal(t, "text/csv; charset=utf-8", h.next(t).ContentType)
	eventuallyExists(t, filepath.Join(done, "r-2.csv"))
	got, err := os.ReadFile(filepath.Join(done, "r-2.csv"))
	require.NoError(t, err)
	assert.Equal(t, "new", string(got))
	got, err = os.ReadFile(filepath.Join(done, "r.csv"))
	require.NoError(t, err)
	assert.Equal(t, "old", string(got))
}

func TestEachFileHandledOnceUnderConcurrency(t *testing.T) {
	dir := t.TempDir()
	const files = 40
	var (
		mu       sync.Mutex
		inFlight = map[string]bool{}
		count    = map[string]int{}
	)
	all := make(chan struct{})
	h := channel.HandlerFunc(func(_ context.Context, m *message.Message) channel.Result {
		name := m.Meta[MetaName]
		mu.Lock()
		if inFlight[name] {
			t.Errorf("%s handed over twice at once", name)
		}
		inFlight[name] = true
		count[name]++
		if len(count) == files {
			select {
			case <-all:
			default:
				close(all)
			}
		}
		mu.Unlock()
		runtime.Gosched() // give another goroutine a chance to take the same file
		mu.Lock()
		inFlight[name] = false
		mu.Unlock()
		return channel.Result{Settle: channel.Ack, State: "done", Message: m}
	})
	src := newSource(t, dir, WithConcurrency(4), WithRescanInterval(5*time.Millisecond))
	stop := start(t, src, h)
	for i := range files {
		write(t, filepath.Join(dir, "f"+strconv.Itoa(i)+".txt"), strconv.Itoa(i))
	}
	select {
	case <-all:
	case <-time.After(wait):
		t.Fatal("not every file was handled")
	}
	stop()
	entries, err := os.ReadDir(filepath.Join(dir, "done"))
	require.NoError(t, err)
	assert.Len(t, entries, files, "every file moved once, with no renamed duplicate")
	mu.Lock()
	defer mu.Unlock()
	for name, n := range count {
		assert.Equal(t, 1, n, name)
	}
}

func TestStopWaitsForFileInFlight(t *testing.T) {
	dir := t.TempDir()
	entered := make(chan context.Context)
	release := make(chan struct{})
	src := newSource(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, channel.HandlerFunc(func(hctx context.Context, m *message.Message) channel.Result {
			entered <- hctx
			<-release
			return channel.Result{Settle: channel.Ack, State: "done", Message: m}
		}))
	}()
	write(t, filepath.Join(dir, "slow.txt"), "x")
	var hctx context.Context
	select {
	case hctx = <-entered:
	case <-time.After(wait):
		t.Fatal("file never handed over")
	}
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v with a file in flight", err)
	default:
	}
	assert.NoError(t, hctx.Err(), "stopping the source must not cancel the file in flight")
	close(release)
	require.NoError(t, <-done)
	assert.FileExists(t, filepath.Join(dir, "done", "slow.txt"), "settled before Run returned")
}

func TestFolderRemovedEndsRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "in")
	require.NoError(t, os.Mkdir(dir, 0o755))
	src := newSource(t, dir, WithDoneDir(filepath.Join(t.TempDir(), "done")))
	done := make(chan error, 1)
	go func() { done <- src.Run(context.Background(), newCollector(nil)) }()
	// The failed folder appears once Run has started watching.
	eventuallyExists(t, filepath.Join(dir, "failed"))
	require.NoError(t, os.RemoveAll(dir))
	select {
	case err := <-done:
		require.ErrorIs(t, err, fs.ErrNotExist)
		assert.ErrorContains(t, err, dir)
	case <-time.After(wait):
		t.Fatal("Run did not notice its folder was removed")
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		dir  string
		opts []Option
		want string
	}{
		{"", nil, "empty folder name"},
		{dir, []Option{WithGlob("[")}, `glob "[": syntax error in pattern`},
		{dir, []Option{WithSettleDelay(0)}, "settle delay 0s, want > 0"},
		{dir, []Option{WithRescanInterval(-time.Second)}, "rescan interval -1s, want > 0"},
		{dir, []Option{WithConcurrency(0)}, "concurrency 0, want >= 1"},
		{dir, []Option{WithDoneDir(dir)}, "the done folder must not be the watched folder"},
		{dir, []Option{WithFailedDir(dir + "/.")}, "the failed folder must not be the watched folder"},
	} {
		_, err := New(tt.dir, tt.opts...)
		require.ErrorIs(t, err, ErrInvalid, tt.want)
		assert.ErrorContains(t, err, tt.want)
	}
}

func TestRunErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	src, err := New(missing, WithName("orders folder"))
	require.NoError(t, err)
	assert.Equal(t, "orders folder", src.Name())
	err = src.Run(context.Background(), newCollector(nil))
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.ErrorContains(t, src.Run(context.Background(), nil), "orders folder: nil handler")

	file := filepath.Join(t.TempDir(), "file")
	write(t, file, "x")
	src, err = New(file)
	require.NoError(t, err)
	assert.ErrorContains(t, src.Run(context.Background(), newCollector(nil)), "not a folder")
}

func TestContentType(t *testing.T) {
	for _, tt := range []struct{ name, data, want string }{
		{"a.json", "{}", "application/json"},
		{"A.JSON", "{}", "application/json"},
		{"a.xml", "<a/>", "application/xml"},
		{"a.csv", "a,b", "text/csv; charset=utf-8"},
		{"a.txt", "hi", "text/plain; charset=utf-8"},
		{"a.dat", "hi", "text/plain; charset=utf-8"},
		{"a.bin", "\xff\xfe", "application/octet-stream"},
	} {
		assert.Equal(t, tt.want, contentType(tt.name, []byte(tt.data)), tt.name)
	}
}

func TestFileID(t *testing.T) {
	id := FileID("a.json", []byte(`{"a":1}`))
	assert.Len(t, id, 36)
	assert.Equal(t, id, FileID("a.json", []byte(`{"a":1}`)))
	assert.NotEqual(t, id, FileID("a.json", []byte(`{"a":2}`)), "same size, other content")
	assert.NotEqual(t, id, FileID("b.json", []byte(`{"a":1}`)))
	assert.NotEqual(t, FileID("a", []byte("b\nc")), FileID("a\nb", []byte("c")))
}

// TestSameNameSizeAndTimeOtherContent: a second a.json with the size and
// modification time of the first (cp -p, rsync, tar) but other content is
// a new message; the same content dropped again has the first one's ID.
func TestSameNameSizeAndTimeOtherContent(t *testing.T) {
	dir := t.TempDir()
	h := newCollector(nil)
	start(t, newSource(t, dir), h)
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	drop := func(content string) *message.Message {
		path := filepath.Join(dir, "a.json")
		tmp := filepath.Join(t.TempDir(), "a.json")
		require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
		require.NoError(t, os.Chtimes(tmp, at, at))
		require.NoError(t, os.Rename(tmp, path))
		m := h.next(t)
		require.Eventually(t, func() bool { return !exists(path) }, wait, 5*time.Millisecond, "a.json was never moved")
		return m
	}
	first := drop(`{"n":1}`)
	second := drop(`{"n":2}`)
	assert.NotEqual(t, first.ID, second.ID)
	assert.Equal(t, `{"n":2}`, string(second.Payload))
	third := drop(`{"n":1}`)
	assert.Equal(t, first.ID, third.ID, "the same file dropped again is the same message")
}
