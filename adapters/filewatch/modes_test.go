package filewatch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/message"
	flowerrors "github.com/svcflow/svcflow/errors"
)

// TestRegexFiltersFiles: with a regex, only names matching it (and the
// glob) are taken.
func TestRegexFiltersFiles(t *testing.T) {
	dir := t.TempDir()
	h := newCollector(nil)
	start(t, newSource(t, dir, WithGlob("*.csv"), WithRegex(`^order-[0-9]+\.csv$`)), h)
	write(t, filepath.Join(dir, "order-x.csv"), "no")
	write(t, filepath.Join(dir, "order-12.txt"), "no")
	write(t, filepath.Join(dir, "my-order-1.csv"), "no")
	write(t, filepath.Join(dir, "order-12.csv"), "yes")
	assert.Equal(t, "order-12.csv", h.next(t).Meta[MetaName])
	eventuallyExists(t, filepath.Join(dir, "done", "order-12.csv"))
	for _, name := range []string{"order-x.csv", "order-12.txt", "my-order-1.csv"} {
		assert.FileExists(t, filepath.Join(dir, name), "not taken")
	}
	h.none(t)
}

// TestChangesMode: a file stays where it is and is taken again each time
// its content changes; touching it without a change takes nothing.
func TestChangesMode(t *testing.T) {
	dir := t.TempDir()
	h := newCollector(nil)
	src := newSource(t, dir, WithMode(ModeChanges))
	observed := make(chan string, 10)
	src.observed = func(name string, _ int64) { observed <- name }
	start(t, src, h)
	path := filepath.Join(dir, "prices.json")
	write(t, path, `{"v":1}`)
	first := h.next(t)
	assert.Equal(t, `{"v":1}`, string(first.Payload))
	assert.Equal(t, "prices.json", <-observed)

	// Touched, same content: not taken again. A file written after the
	// touch was noticed is stable later, so it is handled after the
	// touched one would have been (one at a time, in order).
	later := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(path, later, later))
	assert.Equal(t, "prices.json", <-observed)
	write(t, filepath.Join(dir, "z.json"), `{}`)
	assert.Equal(t, "z.json", h.next(t).Meta[MetaName], "the touch without a change was skipped")

	write(t, path, `{"v":2}`)
	second := h.next(t)
	assert.Equal(t, `{"v":2}`, string(second.Payload))
	assert.NotEqual(t, first.ID, second.ID, "the ID follows the content")
	assert.FileExists(t, path, "the file stays")
	assert.NoFileExists(t, filepath.Join(dir, "done", "prices.json"))
	h.none(t)
}

// TestChangesModeFailureStays: a failed file stays in place with its
// error report in the failed folder, and is taken again once changed.
func TestChangesModeFailureStays(t *testing.T) {
	dir := t.TempDir()
	h := newCollector(func(m *message.Message) channel.Result {
		if strings.Contains(string(m.Payload), "bad") {
			return channel.Result{Settle: channel.Ack, Outcome: flowerrors.KindStop, State: "rejected", Message: m, Err: flowerrors.Stop("bad content")}
		}
		return channel.Result{Settle: channel.Ack, State: "done", Message: m}
	})
	start(t, newSource(t, dir, WithMode(ModeChanges)), h)
	path := filepath.Join(dir, "c.json")
	write(t, path, `"bad"`)
	h.next(t)
	report := filepath.Join(dir, "failed", "c.json"+ErrorFileSuffix)
	eventuallyExists(t, report)
	text, err := os.ReadFile(report)
	require.NoError(t, err)
	assert.Contains(t, string(text), "bad content")
	assert.FileExists(t, path)
	write(t, path, `"good"`)
	assert.Equal(t, `"good"`, string(h.next(t).Payload))
}

// TestTriggerFile: data.csv waits for data.ok; then it is taken, and the
// trigger removed. A trigger named data.csv.ok works too; trigger files
// themselves are never data.
func TestTriggerFile(t *testing.T) {
	dir := t.TempDir()
	src := newSource(t, dir, WithTrigger(".ok"))
	waiting := make(chan string, 10)
	src.untriggered = func(name string) { waiting <- name }
	h := newCollector(nil)
	start(t, src, h)
	write(t, filepath.Join(dir, "data.csv"), "a,b\n1,2\n")
	write(t, filepath.Join(dir, "other.csv"), "x")
	// Each file is found stable, then waits: nothing is taken until its
	// trigger appears.
	got := []string{<-waiting, <-waiting}
	assert.ElementsMatch(t, []string{"data.csv", "other.csv"}, got)
	h.none(t)

	write(t, filepath.Join(dir, "data.ok"), "")
	m := h.next(t)
	assert.Equal(t, "data.csv", m.Meta[MetaName])
	eventuallyExists(t, filepath.Join(dir, "done", "data.csv"))
	require.Eventually(t, func() bool { return !exists(filepath.Join(dir, "data.ok")) }, wait, 5*time.Millisecond, "the trigger is removed")

	write(t, filepath.Join(dir, "other.csv.ok"), "")
	assert.Equal(t, "other.csv", h.next(t).Meta[MetaName])
	eventuallyExists(t, filepath.Join(dir, "done", "other.csv"))
	require.Eventually(t, func() bool { return !exists(filepath.Join(dir, "other.csv.ok")) }, wait, 5*time.Millisecond)
	h.none(t)
}

func TestNewErrorsOfModes(t *testing.T) {
	for want, opt := range map[string]Option{
		`regex "(": error parsing regexp`:       WithRegex("("),
		`mode "copy": expected move or changes`: WithMode("copy"),
		`trigger "a/b": expected a suffix`:      WithTrigger("a/b"),
	} {
		_, err := New(t.TempDir(), opt)
		require.ErrorIs(t, err, ErrInvalid, want)
		assert.ErrorContains(t, err, want)
	}
}

// TestComponentModes: the files component passes regex, mode and trigger
// on, and refuses bad ones when built.
func TestComponentModes(t *testing.T) {
	src, err := Component.Build(component.Env{Name: "c"}, Spec{Dir: t.TempDir(), Glob: "*", Regex: `^a`, Mode: "changes", Trigger: ".ok",
		Settle: time.Second, Rescan: time.Second, Concurrency: 1})
	require.NoError(t, err)
	s := src.(*source)
	assert.Equal(t, ModeChanges, s.mode)
	assert.Equal(t, ".ok", s.trigger)
	assert.True(t, s.match("abc"))
	assert.False(t, s.match("bca"))
	assert.False(t, s.match("a.ok"), "a trigger file is never data")
	_, err = Component.Build(component.Env{Name: "c"}, Spec{Dir: t.TempDir(), Glob: "*", Mode: "copy", Settle: time.Second, Rescan: time.Second, Concurrency: 1})
	assert.ErrorIs(t, err, ErrInvalid)
}
