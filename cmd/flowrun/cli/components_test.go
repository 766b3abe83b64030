package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
	_ "github.com/svcflow/svcflow/adapters/component/all" // the shipped sources and stores, as cmd/flowrun links them
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/cmd/flowrun/cli"
)

// wordsSpec is the spec of a source component this test package adds:
// nothing in the module knows it.
type wordsSpec struct {
	Words  []string `yaml:"words" spec:"required,scalar" doc:"the words to send, one message each"`
	Prefix string   `yaml:"prefix" default:"w-" doc:"the message ID prefix"`
}

// wordsSource hands each word to the channel once, then waits.
type wordsSource struct {
	spec    wordsSpec
	mu      sync.Mutex
	results []channel.Result
}

func (s *wordsSource) Name() string { return "words" }

func (s *wordsSource) Run(ctx context.Context, h channel.Handler) error {
	for _, w := range s.spec.Words {
		m := message.New("application/json", []byte(`{"word": "`+w+`"}`), nil)
		m.ID = s.spec.Prefix + w
		r := h.Handle(ctx, m)
		s.mu.Lock()
		s.results = append(s.results, r)
		s.mu.Unlock()
	}
	<-ctx.Done()
	return nil
}

var (
	wordsMu      sync.Mutex
	wordsSources []*wordsSource
)

func init() {
	component.Register(component.Source("words", "a fixed list of words, one message each (a test component)",
		func(env component.Env, s wordsSpec) (channel.Source, error) {
			src := &wordsSource{spec: s}
			wordsMu.Lock()
			wordsSources = append(wordsSources, src)
			wordsMu.Unlock()
			return src, nil
		}))
}

const wordsYAML = `version: 1
flows:
  shout:
    input: [word]
    steps:
      - stop: {if: "word == 'quiet'", reason: "too quiet"}
      - set: {loud: "upper(word)"}
channels:
  words:
    from: {words: [hello, quiet, world]}
    flow: shout
    store: memory
`

func runCLI(ctx context.Context, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, args, cli.WithStdio(strings.NewReader(""), &out, &errOut))
	return code, out.String(), errOut.String()
}

// TestOutOfTreeComponent: a source registered by a package outside the
// module's adapters works in YAML with validate, serve and the catalog,
// with no edit to any existing file.
func TestOutOfTreeComponent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "words.yaml")
	require.NoError(t, os.WriteFile(path, []byte(wordsYAML), 0o644))

	code, out, errOut := runCLI(t.Context(), "services")
	require.Equal(t, cli.ExitOK, code, errOut)
	assert.Contains(t, out, "words  a fixed list of words, one message each (a test component)")
	assert.Contains(t, out, "words (list of string; required; shorthand: words: VALUE): the words to send, one message each")
	assert.Contains(t, out, "prefix (string; default w-): the message ID prefix")

	code, out, errOut = runCLI(t.Context(), "validate", path)
	require.Equal(t, cli.ExitOK, code, errOut)
	assert.Equal(t, "ok: 1 flow, 1 channel, 0 test cases in "+path+"\n", out)

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(wordsYAML, "{words: [hello, quiet, world]}", "{words: {word: [x]}}", 1)), 0o644))
	code, _, errOut = runCLI(t.Context(), "validate", bad)
	assert.Equal(t, cli.ExitFailure, code)
	assert.Contains(t, errOut, bad+`:10:20: channel "words": from: words: unknown key "word": expected words or prefix (did you mean "words"?)`)

	wordsMu.Lock()
	before := len(wordsSources)
	wordsMu.Unlock()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int)
	go func() {
		code, _, _ := runCLI(ctx, "serve", path, "--admin", "off", "--data", filepath.Join(dir, "data"))
		done <- code
	}()
	var src *wordsSource
	require.Eventually(t, func() bool {
		wordsMu.Lock()
		defer wordsMu.Unlock()
		if len(wordsSources) <= before {
			return false
		}
		src = wordsSources[len(wordsSources)-1]
		src.mu.Lock()
		defer src.mu.Unlock()
		return len(src.results) == 3
	}, 10*time.Second, 10*time.Millisecond)
	cancel()
	assert.Equal(t, cli.ExitOK, <-done)

	src.mu.Lock()
	defer src.mu.Unlock()
	assert.Equal(t, channel.Ack, src.results[0].Settle)
	assert.Equal(t, "HELLO", src.results[0].Message.Context["loud"])
	assert.Equal(t, "w-hello", src.results[0].Message.ID)
	assert.Equal(t, "rejected", string(src.results[1].State))
	assert.Equal(t, "WORLD", src.results[2].Message.Context["loud"])
}

// TestServicesListsStepKinds: the catalog lists the built-in step kinds
// from their components, with the fields of their specs, once.
func TestServicesListsStepKinds(t *testing.T) {
	code, out, errOut := runCLI(t.Context(), "services")
	require.Equal(t, cli.ExitOK, code, errOut)
	assert.Contains(t, out, "\n  http ")
	assert.Contains(t, out, "url (template; required): the http or https URL, a template over the context")
	assert.Contains(t, out, "level (string; default info; one of debug, info, warn, error): the level")
	assert.Contains(t, out, "{KEY: VALUE, ...} (map of expression (in order); required): key: expression, evaluated in order")
	assert.Contains(t, out, "duration (duration; required; shorthand: sleep: VALUE): how long to wait")
	assert.NotContains(t, out, "Step components", "step kinds are listed once, as step kinds")
}
