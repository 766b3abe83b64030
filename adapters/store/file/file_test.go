package file

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/storetest"
	flowerrors "github.com/svcflow/svcflow/errors"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(t.TempDir())
		require.NoError(t, err)
		return s
	})
}

func TestDurable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "messages")
	storetest.RunDurable(t, func(t *testing.T) store.Store {
		s, err := Open(dir)
		require.NoError(t, err)
		return s
	})
}

// newMessage returns a small message with the given ID.
func newMessage(id string) *message.Message {
	return &message.Message{ID: id, Time: time.Now().UTC(), ContentType: "text/plain", Payload: []byte("x")}
}

func TestFileName(t *testing.T) {
	tests := []struct {
		id     string
		hashed bool
	}{
		{"6f1c2a3e-1b2c-4d5e-8f90-123456789abc", false},
		{"order_42", false},
		{"Upper", true},
		{"../../etc/passwd", true},
		{"a/b", true},
		{".hidden", true},
		{"with space", true},
		{"ünïcode", true},
		{strings.Repeat("a", 201), true},
	}
	for _, tt := range tests {
		name := fileName(tt.id)
		assert.Equal(t, filepath.Base(name), name, tt.id)
		assert.True(t, strings.HasSuffix(name, fileExt))
		assert.Equal(t, tt.hashed, strings.HasPrefix(name, "~"), tt.id)
		assert.LessOrEqual(t, len(name), 210)
	}
	assert.NotEqual(t, fileName("Upper"), fileName("upper"))
}

func TestLayout(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	ids := []string{"plain-id", "../escape", "Mixed", strings.Repeat("x", 300)}
	for _, id := range ids {
		require.NoError(t, s.Put(ctx, newMessage(id)))
		require.NoError(t, s.Transition(ctx, id, store.Processing, store.Update{}))
	}
	require.NoError(t, s.Close())

	// Exactly one readable JSON file per message, all inside dir, and no
	// temporary files left behind.
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, len(ids))
	for _, e := range ents {
		assert.False(t, strings.HasPrefix(e.Name(), tempPrefix), e.Name())
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		assert.Contains(t, string(data), `"state":"processing"`)
	}
	_, err = os.Stat(filepath.Join(dir, "plain-id.json"))
	assert.NoError(t, err)
	_, err = os.Stat(filepath.Join(filepath.Dir(dir), "escape.json"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestOpenCleansTempFiles(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, tempPrefix+"12345")
	require.NoError(t, os.WriteFile(tmp, []byte(`{"half":`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub.json"), 0o755))
	s, err := Open(dir)
	require.NoError(t, err)
	defer s.Close()
	_, err = os.Stat(tmp)
	assert.ErrorIs(t, err, os.ErrNotExist)
	n, err := s.Count(context.Background(), store.Query{})
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestOpenErrors(t *testing.T) {
	t.Run("corrupt record", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"message":`), 0o600))
		_, err := Open(dir)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "bad.json")
		assert.Contains(t, err.Error(), "store file: open")
	})
	t.Run("not a record", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "x.json"), []byte(`{"a":1}`), 0o600))
		_, err := Open(dir)
		assert.ErrorContains(t, err, "not a message record")
	})
	t.Run("duplicate id", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(dir)
		require.NoError(t, err)
		require.NoError(t, s.Put(context.Background(), newMessage("a")))
		require.NoError(t, s.Close())
		data, err := os.ReadFile(filepath.Join(dir, "a.json"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "copy.json"), data, 0o600))
		_, err = Open(dir)
		assert.ErrorContains(t, err, `both hold message "a"`)
	})
	t.Run("dir is a file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(path, nil, 0o600))
		_, err := Open(path)
		assert.Error(t, err)
	})
}

// TestUnwritable checks that a store whose directory cannot be
// written returns errors and never panics.
func TestUnwritable(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "gone")
	s, err := Open(dir)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Put(ctx, newMessage("a")))
	require.NoError(t, os.RemoveAll(dir))

	err = s.Put(ctx, newMessage("b"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `store file: put "b"`)
	err = s.Transition(ctx, "a", store.Done, store.Update{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `store file: transition "a" to done`)
	_, err = s.Get(ctx, "a")
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = s.Search(ctx, store.Query{})
	assert.Error(t, err)
	_, err = s.Get(ctx, "b")
	assert.ErrorIs(t, err, store.ErrNotFound, "a failed put leaves nothing behind")
}

func TestReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("permission bits do not bind root")
	}
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, os.Chmod(dir, 0o500))
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	err = s.Put(ctx, message.New("text/plain", []byte("x"), nil))
	assert.ErrorIs(t, err, os.ErrPermission)
}

// TestRecordWrittenBeforeOutcomes: a record file written before records
// kept an outcome and a reason (this one was, byte for byte) reads back
// with a zero Outcome and an empty Reason, and takes them on its next
// transition.
func TestRecordWrittenBeforeOutcomes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const old = `{"message":{"id":"old","time":"2025-01-02T03:04:05Z","content_type":"application/json","payload":{"items":[]},"context":{"items":[]}},"state":"rejected","err":"flow \"orders\": step \"check\": stop: no items","attempts":1,"updated":"2025-01-02T03:04:06.232863428Z","history":[{"state":"pending","at":"2025-01-02T03:04:06.229675294Z"},{"state":"processing","at":"2025-01-02T03:04:06.231650557Z"},{"state":"rejected","at":"2025-01-02T03:04:06.232863428Z","err":"flow \"orders\": step \"check\": stop: no items"}]}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "old.json"), []byte(old), 0o600))
	s, err := Open(dir)
	require.NoError(t, err)
	defer s.Close()

	rec, err := s.Get(ctx, "old")
	require.NoError(t, err)
	assert.Equal(t, store.Rejected, rec.State)
	assert.Equal(t, `flow "orders": step "check": stop: no items`, rec.Err)
	assert.Zero(t, rec.Outcome)
	assert.Empty(t, rec.Reason)
	require.Len(t, rec.History, 3)
	for _, h := range rec.History {
		assert.Zero(t, h.Outcome)
		assert.Empty(t, h.Reason)
	}
	recs, err := s.Search(ctx, store.Query{States: []store.State{store.Rejected}})
	require.NoError(t, err)
	assert.Equal(t, []*store.Record{rec}, recs)

	require.NoError(t, s.Transition(ctx, "old", store.Processing, store.Update{}))
	require.NoError(t, s.Transition(ctx, "old", store.Rejected, store.Update{Err: "stop: no items", Outcome: flowerrors.KindStop, Reason: "no items"}))
	rec, err = s.Get(ctx, "old")
	require.NoError(t, err)
	assert.Equal(t, flowerrors.KindStop, rec.Outcome)
	assert.Equal(t, "no items", rec.Reason)
	assert.Zero(t, rec.History[2].Outcome, "the history keeps what the old run recorded")
}

// TestOutcomeInFile: a record's file names its outcome as errors.Kind
// spells it, beside the reason, in the record and in its history.
func TestOutcomeInFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Begin(ctx, newMessage("r")))
	require.NoError(t, s.Transition(ctx, "r", store.Rejected, store.Update{Err: "stop: no items", Outcome: flowerrors.KindStop, Reason: "no items"}))
	data, err := os.ReadFile(filepath.Join(dir, "r.json"))
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(string(data), `"outcome":"stop","reason":"no items"`), string(data))
	assert.NotContains(t, string(data), `"outcome":"ok"`, "no outcome, none written")
}
