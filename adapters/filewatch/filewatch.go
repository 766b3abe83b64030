package filewatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/fsnotify/fsnotify"
	"github.com/google/uuid"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	flowerrors "github.com/svcflow/svcflow/errors"
)

// Meta keys set on every file's message.
const (
	// MetaName is the file's base name.
	MetaName = "file.name"
	// MetaPath is the file's absolute path when it was taken.
	MetaPath = "file.path"
	// MetaSize is the file's size in bytes, in decimal.
	MetaSize = "file.size"
	// MetaModTime is the file's modification time, RFC 3339 with
	// nanoseconds, in UTC.
	MetaModTime = "file.modtime"
)

// Defaults of the options.
const (
	// DefaultGlob takes every file (but dot-files, see the package doc).
	DefaultGlob = "*"
	// DefaultSettleDelay is how long a file must stay unchanged.
	DefaultSettleDelay = time.Second
	// DefaultRescanInterval is how often the folder is listed in full.
	DefaultRescanInterval = 5 * time.Second
	// DefaultDoneDir is the done folder's name under the watched folder.
	DefaultDoneDir = "done"
	// DefaultFailedDir is the failed folder's name under the watched folder.
	DefaultFailedDir = "failed"
)

// ErrorFileSuffix ends the name of the file written beside a failed file
// in the failed folder: "order.json" gets "order.json.error.txt".
const ErrorFileSuffix = ".error.txt"

// ErrInvalid is returned (wrapped) by New for a bad argument or option.
var ErrInvalid = errors.New("invalid file watcher")

// idSpace is the UUID namespace of file message IDs.
var idSpace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/svcflow/svcflow/adapters/filewatch"))

// FileID returns the message ID of a file: a UUID (version 5) derived from
// its base name and a SHA-256 of its content. The same file offered again
// (after a restart, or dropped twice) has the same ID, so a channel
// answers it from its store instead of running it again; a file with other
// content has another ID, whatever its size and modification time (a copy
// made with cp -p, rsync or tar keeps those).
func FileID(name string, content []byte) string {
	sum := sha256.Sum256(content)
	key := make([]byte, 0, len(name)+1+hex.EncodedLen(len(sum)))
	key = append(key, name...)
	key = append(key, '\n')
	key = hex.AppendEncode(key, sum[:])
	return uuid.NewSHA1(idSpace, key).String()
}

// Option configures a file watcher.
type Option func(*source)

// WithGlob takes only files whose base name matches pattern (path/filepath
// Match syntax, e.g. "*.json"; default "*").
func WithGlob(pattern string) Option {
	return func(s *source) { s.glob = pattern }
}

// WithRegex takes only files whose base name also matches the regular
// expression (Go RE2 syntax, unanchored: write ^ and $ to match the whole
// name), besides the glob.
func WithRegex(expr string) Option {
	return func(s *source) { s.regexSrc = expr }
}

// Mode says what becomes of a file once handled.
type Mode string

// The modes.
const (
	// ModeMove (the default) moves a handled file to the done or failed
	// folder: each file is taken once.
	ModeMove Mode = "move"
	// ModeChanges leaves a handled file where it is and takes it again
	// each time its content changes: a file whose content hash is the
	// one last handled is not taken again (its message ID, FileID, is
	// derived from the content too, so a channel's store answers it
	// after a restart without running it). A failed or rejected file
	// stays too, its error report written to the failed folder as
	// "<name>.error.txt".
	ModeChanges Mode = "changes"
)

// WithMode sets what becomes of a handled file (default ModeMove).
func WithMode(m Mode) Option {
	return func(s *source) { s.mode = m }
}

// WithTrigger takes a data file only once its trigger file exists: the
// file of the same name with its extension replaced by suffix, or with
// suffix added ("data.csv" waits for "data.ok" or "data.csv.ok" with
// suffix ".ok"). Files whose name ends with suffix are never taken as
// data. Once the data file is settled, its trigger file is removed.
func WithTrigger(suffix string) Option {
	return func(s *source) { s.trigger = suffix }
}

// WithDoneDir sets the folder acknowledged files are moved to (default
// "done" under the watched folder). It is created when needed.
func WithDoneDir(dir string) Option {
	return func(s *source) { s.doneDir = dir }
}

// WithFailedDir sets the folder failed files are moved to, each with an
// error file beside it (default "failed" under the watched folder). It is
// created when needed.
func WithFailedDir(dir string) Option {
	return func(s *source) { s.failedDir = dir }
}

// WithSettleDelay sets how long a file's size and modification time must
// stay unchanged before it is taken (default DefaultSettleDelay).
func WithSettleDelay(d time.Duration) Option {
	return func(s *source) { s.settle = d }
}

// WithRescanInterval sets how often the folder is listed in full, besides
// the change notifications, to catch what they miss (default
// DefaultRescanInterval).
func WithRescanInterval(d time.Duration) Option {
	return func(s *source) { s.rescan = d }
}

// WithConcurrency sets how many files are handled at once (default 1:
// one after the other, in the order they became stable).
func WithConcurrency(n int) Option {
	return func(s *source) { s.concurrency = n }
}

// WithContentType gives every message this content type instead of one
// chosen from the file's extension and content.
func WithContentType(ct string) Option {
	return func(s *source) { s.contentType = ct }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *source) { s.log = l }
}

// WithCreateDir makes Run create the watched folder when it does not
// exist (default: Run fails for a missing folder).
func WithCreateDir() Option {
	return func(s *source) { s.create = true }
}

// WithName sets the source's Name (default "file <folder>").
func WithName(name string) Option {
	return func(s *source) { s.name = name }
}

// source is the channel.Source returned by New.
type source struct {
	dir         string
	glob        string
	regexSrc    string
	regex       *regexp.Regexp
	mode        Mode
	trigger     string
	doneDir     string
	failedDir   string
	settle      time.Duration
	rescan      time.Duration
	concurrency int
	contentType string
	log         *slog.Logger
	name        string
	create      bool

	// observed, when set (by tests), is called on the watcher's goroutine
	// each time a file's size or modification time is recorded, before the
	// settle delay starts.
	observed func(name string, size int64)
	// untriggered, when set (by tests), is called on the watcher's
	// goroutine when a stable file starts waiting for its trigger file.
	untriggered func(name string)
}

var _ channel.Source = (*source)(nil)

// New returns a source that hands the files put in dir to the channel, one
// message per file, and moves each file to the done or failed folder
// according to the result. See the package documentation for the rules.
func New(dir string, opts ...Option) (channel.Source, error) {
	if dir == "" {
		return nil, fmt.Errorf("filewatch: %w: empty folder name", ErrInvalid)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("filewatch: folder %s: %w", dir, err)
	}
	s := &source{
		dir:         abs,
		glob:        DefaultGlob,
		settle:      DefaultSettleDelay,
		rescan:      DefaultRescanInterval,
		concurrency: 1,
	}
	for _, opt := range opts {
		opt(s)
	}
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("filewatch: folder %s: %w: %s", abs, ErrInvalid, fmt.Sprintf(format, args...))
	}
	if _, err := filepath.Match(s.glob, ""); err != nil {
		return nil, invalid("glob %q: %v", s.glob, err)
	}
	if s.regexSrc != "" {
		if s.regex, err = regexp.Compile(s.regexSrc); err != nil {
			return nil, invalid("regex %q: %v", s.regexSrc, err)
		}
	}
	switch s.mode {
	case "":
		s.mode = ModeMove
	case ModeMove, ModeChanges:
	default:
		return nil, invalid("mode %q: expected %s or %s", s.mode, ModeMove, ModeChanges)
	}
	if s.trigger != "" && (s.trigger == "." || strings.ContainsAny(s.trigger, `/\`)) {
		return nil, invalid("trigger %q: expected a suffix such as .ok", s.trigger)
	}
	switch {
	case s.settle <= 0:
		return nil, invalid("settle delay %v, want > 0", s.settle)
	case s.rescan <= 0:
		return nil, invalid("rescan interval %v, want > 0", s.rescan)
	case s.concurrency < 1:
		return nil, invalid("concurrency %d, want >= 1", s.concurrency)
	}
	for _, d := range []struct {
		dir  *string
		def  string
		what string
	}{{&s.doneDir, DefaultDoneDir, "done"}, {&s.failedDir, DefaultFailedDir, "failed"}} {
		if *d.dir == "" {
			*d.dir = filepath.Join(abs, d.def)
		}
		if *d.dir, err = filepath.Abs(*d.dir); err != nil {
			return nil, fmt.Errorf("filewatch: %s folder: %w", d.what, err)
		}
		if *d.dir == abs {
			return nil, invalid("the %s folder must not be the watched folder", d.what)
		}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// Name implements channel.Source.
func (s *source) Name() string {
	if s.name != "" {
		return s.name
	}
	return "file " + s.dir
}

// Run implements channel.Source. It creates the done and failed folders,
// takes the files already in the folder and then those that arrive, and
// hands each to h when it is stable. When ctx is canceled it stops taking
// files, lets the handler calls in flight finish (their context carries
// ctx's values but not its cancellation) and settles them, and returns
// nil. It returns an error if the folder cannot be watched or disappears.
func (s *source) Run(ctx context.Context, h channel.Handler) error {
	if h == nil {
		return fmt.Errorf("filewatch: %s: nil handler", s.Name())
	}
	if s.create {
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			return fmt.Errorf("filewatch: %w", err)
		}
	}
	fi, err := os.Stat(s.dir)
	if err != nil {
		return fmt.Errorf("filewatch: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("filewatch: %s: not a folder", s.dir)
	}
	for _, d := range []string{s.doneDir, s.failedDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("filewatch: create folder: %w", err)
		}
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("filewatch: %s: start notifications: %w", s.dir, err)
	}
	defer fw.Close()
	if err := fw.Add(s.dir); err != nil {
		return fmt.Errorf("filewatch: %s: watch: %w", s.dir, err)
	}
	r := &runner{
		src:     s,
		h:       h,
		hctx:    context.WithoutCancel(ctx),
		files:   make(map[string]*entry),
		results: make(chan outcome, s.concurrency),
		log:     s.log.With("source", s.Name()),
	}
	return r.loop(ctx, fw)
}

// state is where a file is in its life with the watcher.
type state int

const (
	observing   state = iota // waiting for its size to settle
	ready                    // stable, queued for a handler slot
	inFlight                 // being read, handled and settled
	retrying                 // nacked: waiting until due
	left                     // not acknowledged: ignored until the next Run
	waitTrigger              // stable, waiting for its trigger file
	kept                     // handled in changes mode: taken again when its content changes
)

// entry is what the watcher knows about one file of the folder.
type entry struct {
	state state
	size  int64
	mod   time.Time
	due   time.Time // observing, retrying: when to look again
	hash  string    // changes mode: the content hash last handled ("" for none)
}

// outcome kinds, reported by a file's goroutine.
const (
	moved      = iota // done or failed: the file left the folder
	retry             // nacked: offer again at due
	leave             // left, or could not be settled: not again this Run
	changed           // the file changed after it was found stable
	unreadable        // could not be read
	handled           // changes mode: handled, left in place
	same              // changes mode: the content is the one last handled
)

// outcome is how handling one file ended.
type outcome struct {
	name  string
	kind  int
	delay time.Duration // retry, unreadable
	hash  string        // handled, same: the content's hash
}

// runner is one Run: the loop's state, owned by the Run goroutine.
type runner struct {
	src      *source
	h        channel.Handler
	hctx     context.Context
	files    map[string]*entry
	queue    []string // ready files, in order
	inFlight int
	results  chan outcome
	log      *slog.Logger
}

// loop is the Run goroutine: every change to the runner's state happens
// here, so a file is never handed over twice at once.
func (r *runner) loop(ctx context.Context, fw *fsnotify.Watcher) error {
	rescan := time.NewTicker(r.src.rescan)
	defer rescan.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	err := r.scan()
	for err == nil {
		r.dispatch()
		r.arm(timer)
		select {
		case <-ctx.Done():
			return r.drain(nil)
		case ev := <-fw.Events:
			if ev.Name == r.src.dir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				err = fmt.Errorf("filewatch: %s: %w", r.src.dir, fs.ErrNotExist)
			} else if filepath.Dir(ev.Name) == r.src.dir {
				if r.src.isTrigger(filepath.Base(ev.Name)) {
					err = r.scan() // a trigger: look at the data files it may release
				} else {
					r.look(filepath.Base(ev.Name))
				}
			}
		case werr := <-fw.Errors:
			// Usually an overflow of the event queue: list the folder.
			r.log.Warn("file notifications", "err", werr)
			err = r.scan()
		case <-timer.C:
			r.due()
		case <-rescan.C:
			err = r.scan()
		case o := <-r.results:
			r.finish(o)
		}
	}
	return r.drain(err)
}

// drain waits for the files in flight, then returns err.
func (r *runner) drain(err error) error {
	for r.inFlight > 0 {
		r.finish(<-r.results)
	}
	return err
}

// scan lists the folder and looks at every file in it. Only a folder that
// is gone is an error; other listing errors are logged.
func (r *runner) scan() error {
	ents, err := os.ReadDir(r.src.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("filewatch: %w", err)
		}
		r.log.Error("list folder", "err", err)
	}
	for _, de := range ents {
		if de.Type().IsRegular() {
			r.look(de.Name())
		}
	}
	return nil
}

// match reports whether the file name is one to take.
func (s *source) match(name string) bool {
	if strings.HasPrefix(name, ".") || s.isTrigger(name) {
		return false
	}
	ok, _ := filepath.Match(s.glob, name) // the pattern was checked by New
	return ok && (s.regex == nil || s.regex.MatchString(name))
}

// isTrigger reports whether name is a trigger file's.
func (s *source) isTrigger(name string) bool {
	return s.trigger != "" && strings.HasSuffix(name, s.trigger)
}

// triggers returns the paths of the trigger files of a data file: its
// name with the extension replaced by the suffix, and with the suffix
// added.
func (s *source) triggers(name string) []string {
	if s.trigger == "" {
		return nil
	}
	out := []string{filepath.Join(s.dir, name+s.trigger)}
	if ext := filepath.Ext(name); ext != "" {
		out = append(out, filepath.Join(s.dir, strings.TrimSuffix(name, ext)+s.trigger))
	}
	return out
}

// triggered reports whether a data file may be taken: no trigger is
// configured, or one of its trigger files exists.
func (s *source) triggered(name string) bool {
	if s.trigger == "" {
		return true
	}
	for _, p := range s.triggers(name) {
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// removeTriggers removes the trigger files of a settled data file.
func (s *source) removeTriggers(name string, log *slog.Logger) {
	for _, p := range s.triggers(name) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("remove trigger file", "trigger", p, "err", err)
		}
	}
}

// look records what a file looks like now: a new or changed file starts
// (again) its settle delay. Files being handled, queued, retried or left
// are not touched.
func (r *runner) look(name string) {
	if !r.src.match(name) {
		return
	}
	e := r.files[name]
	if e != nil && e.state != observing && e.state != left && e.state != waitTrigger && e.state != kept {
		return
	}
	fi, err := os.Lstat(filepath.Join(r.src.dir, name))
	if err != nil || !fi.Mode().IsRegular() {
		delete(r.files, name) // gone (a left file too: nothing to remember)
		return
	}
	if e != nil && e.state == left {
		return
	}
	if e != nil && e.state == waitTrigger {
		if r.src.triggered(name) {
			r.observe(name, e, fi) // released: settle once more, then take it
		}
		return
	}
	if e != nil && e.state == kept && e.size == fi.Size() && e.mod.Equal(fi.ModTime()) {
		return // handled, unchanged
	}
	if e == nil {
		e = &entry{}
		r.files[name] = e
	} else if e.size == fi.Size() && e.mod.Equal(fi.ModTime()) {
		return // unchanged: keep the settle delay running
	}
	r.observe(name, e, fi)
}

// observe starts the settle delay of e at its current size.
func (r *runner) observe(name string, e *entry, fi fs.FileInfo) {
	e.state, e.size, e.mod = observing, fi.Size(), fi.ModTime()
	e.due = time.Now().Add(r.src.settle)
	if r.src.observed != nil {
		r.src.observed(name, e.size)
	}
}

// due looks again at the files whose delay has passed: an unchanged one is
// queued, a changed one observed again, a vanished one forgotten.
func (r *runner) due() {
	now := time.Now()
	var names []string
	for name, e := range r.files {
		if (e.state == observing || e.state == retrying) && !now.Before(e.due) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		e := r.files[name]
		fi, err := os.Lstat(filepath.Join(r.src.dir, name))
		switch {
		case err != nil || !fi.Mode().IsRegular():
			delete(r.files, name)
		case e.size == fi.Size() && e.mod.Equal(fi.ModTime()) && !r.src.triggered(name):
			e.state = waitTrigger
			if r.src.untriggered != nil {
				r.src.untriggered(name)
			}
		case e.size == fi.Size() && e.mod.Equal(fi.ModTime()):
			e.state = ready
			r.queue = append(r.queue, name)
		default:
			r.observe(name, e, fi)
		}
	}
}

// arm sets timer to the earliest due time, or stops it.
func (r *runner) arm(timer *time.Timer) {
	var next time.Time
	for _, e := range r.files {
		if (e.state == observing || e.state == retrying) && (next.IsZero() || e.due.Before(next)) {
			next = e.due
		}
	}
	if next.IsZero() {
		timer.Stop()
		return
	}
	timer.Reset(max(time.Until(next), 0))
}

// dispatch starts queued files while handler slots are free.
func (r *runner) dispatch() {
	for r.inFlight < r.src.concurrency && len(r.queue) > 0 {
		name := r.queue[0]
		r.queue = r.queue[1:]
		e := r.files[name]
		if e == nil || e.state != ready {
			continue
		}
		e.state = inFlight
		r.inFlight++
		go func(size int64, mod time.Time, last string) {
			r.results <- r.process(name, size, mod, last)
		}(e.size, e.mod, e.hash)
	}
}

// finish applies a file's outcome.
func (r *runner) finish(o outcome) {
	r.inFlight--
	e := r.files[o.name]
	if e == nil {
		return
	}
	switch o.kind {
	case moved:
		delete(r.files, o.name)
	case retry, unreadable:
		e.state, e.due = retrying, time.Now().Add(o.delay)
	case changed:
		e.state, e.size, e.due = observing, -1, time.Now()
		if o.hash != "" {
			e.hash = o.hash // handled before it changed (changes mode)
		}
	case handled, same:
		e.state, e.hash = kept, o.hash
	default:
		e.state = left
	}
}

// process reads one stable file, hands it to the handler and settles it.
// It runs on a goroutine of its own and touches no runner state.
//
// In changes mode last is the hash of the content last handled: a file
// whose content has that hash is not handed over again.
func (r *runner) process(name string, size int64, mod time.Time, last string) outcome {
	s := r.src
	path := filepath.Join(s.dir, name)
	log := r.log.With("file", name)
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return outcome{name: name, kind: changed}
		}
		log.Error("read file", "err", err)
		return outcome{name: name, kind: unreadable, delay: s.rescan}
	}
	if fi, err := os.Lstat(path); err != nil || fi.Size() != size || !fi.ModTime().Equal(mod) || int64(len(data)) != size {
		return outcome{name: name, kind: changed} // still being written: observe again
	}
	var hash string
	if s.mode == ModeChanges {
		sum := sha256.Sum256(data)
		if hash = hex.EncodeToString(sum[:]); hash == last {
			return outcome{name: name, kind: same, hash: hash} // touched, not changed
		}
	}
	m := s.message(name, path, data, size, mod)
	log = log.With("id", m.ID)
	log.Debug("file taken", "size", size)
	res := r.h.Handle(channel.WaitWhenBusy(r.hctx), m) // a busy channel is waited for: a file left is not offered again until the next start

	if res.Settle == channel.Ack || res.Settle == channel.Fail {
		// A file rewritten in place while it was handled holds content the
		// handler never saw: do not move it away, offer it again.
		if fi, err := os.Lstat(path); err == nil && (fi.Size() != size || !fi.ModTime().Equal(mod)) {
			// In changes mode the content handled is remembered: a touch
			// during the run (same content) is then not taken again.
			log.Warn("file changed while it was handled: it will be offered again", "settle", res.Settle.String())
			return outcome{name: name, kind: changed, hash: hash}
		}
	}
	settle := res.Settle
	if settle == channel.Ack && res.Outcome == flowerrors.KindStop {
		// Rejected on purpose (a Stop: invalid content): finished, never
		// offered again, but filed with the failures and the reason beside.
		settle = channel.Fail
	}
	if s.mode == ModeChanges && (settle == channel.Ack || settle == channel.Fail) {
		// The file stays: it is taken again when its content changes.
		if settle == channel.Fail {
			report := filepath.Join(s.failedDir, name+ErrorFileSuffix)
			if err := writeAtomic(report, errorReport(name, m, res)); err != nil {
				log.Error("write error file", "err", err)
			}
			log.Warn("file failed: it is taken again when it changes", "report", report, "state", res.State,
				"error_id", res.ErrorID, "err", res.Err)
		} else {
			log.Debug("file done: it is taken again when it changes", "state", res.State)
		}
		s.removeTriggers(name, log)
		return outcome{name: name, kind: handled, hash: hash}
	}
	switch settle {
	case channel.Ack:
		dst, err := moveUnique(path, s.doneDir, name)
		if err != nil {
			log.Error("file done but not moved: it will be offered again at the next start", "err", err)
			return outcome{name: name, kind: leave}
		}
		log.Debug("file done", "state", res.State, "to", dst)
		s.removeTriggers(name, log)
		return outcome{name: name, kind: moved}
	case channel.Fail:
		dst, err := moveUnique(path, s.failedDir, name)
		if err != nil {
			log.Error("file failed but not moved: it will be offered again at the next start",
				"err", err, "error_id", res.ErrorID, "cause", res.Err)
			return outcome{name: name, kind: leave}
		}
		if err := writeAtomic(dst+ErrorFileSuffix, errorReport(name, m, res)); err != nil {
			log.Error("write error file", "err", err)
		}
		log.Warn("file failed", "to", dst, "state", res.State, "error_id", res.ErrorID, "err", res.Err)
		s.removeTriggers(name, log)
		return outcome{name: name, kind: moved}
	case channel.Nack:
		delay := res.RetryAfter
		if delay <= 0 {
			delay = s.settle
		}
		log.Info("file will be offered again", "retry_after", delay, "err", res.Err)
		return outcome{name: name, kind: retry, delay: delay}
	case channel.Leave:
		log.Info("file left in place until the next start", "state", res.State, "err", res.Err)
		return outcome{name: name, kind: leave}
	default:
		log.Error("file left in place: unknown settle", "settle", res.Settle.String(), "err", res.Err)
		return outcome{name: name, kind: leave}
	}
}

// writeAtomic writes a file that appears whole or not at all: a reader
// never sees it half written.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".writing-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// message builds a file's message.
func (s *source) message(name, path string, data []byte, size int64, mod time.Time) *message.Message {
	ct := s.contentType
	if ct == "" {
		ct = contentType(name, data)
	}
	return &message.Message{
		ID:          FileID(name, data),
		Time:        time.Now().UTC(),
		ContentType: ct,
		Payload:     data,
		Meta: map[string]string{
			MetaName:    name,
			MetaPath:    path,
			MetaSize:    strconv.FormatInt(size, 10),
			MetaModTime: mod.UTC().Format(time.RFC3339Nano),
		},
	}
}

// contentType chooses a content type from a file's extension, else from
// whether its content is UTF-8 text.
func contentType(name string, data []byte) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		return "application/json"
	case ".xml":
		return "application/xml"
	case ".csv":
		return "text/csv; charset=utf-8"
	case ".txt", ".log":
		return "text/plain; charset=utf-8"
	}
	if utf8.Valid(data) {
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// errorReport is the content of a failed file's error file.
func errorReport(name string, m *message.Message, res channel.Result) []byte {
	text := "(no error text)"
	if res.Err != nil {
		text = res.Err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "error: %s\n", text)
	fmt.Fprintf(&b, "error_id: %s\n", res.ErrorID)
	fmt.Fprintf(&b, "message_id: %s\n", m.ID)
	fmt.Fprintf(&b, "outcome: %s\n", res.Outcome)
	fmt.Fprintf(&b, "state: %s\n", res.State)
	fmt.Fprintf(&b, "file: %s\n", name)
	fmt.Fprintf(&b, "time: %s\n", time.Now().UTC().Format(time.RFC3339))
	return []byte(b.String())
}

// moveUnique moves the file at src into dir under name, or under
// "<base>-<n><ext>" (n = 1, 2, ...) when that name, or its error file, is
// taken. It returns the new path.
func moveUnique(src, dir, name string) (string, error) {
	ext := filepath.Ext(name)
	base := strings.TrimSuffix(name, ext)
	for n := 0; n < 100000; n++ {
		cand := name
		if n > 0 {
			cand = base + "-" + strconv.Itoa(n) + ext
		}
		dst := filepath.Join(dir, cand)
		free, err := isFree(dst)
		if err != nil {
			return "", err
		}
		if !free {
			continue
		}
		if free, err = isFree(dst + ErrorFileSuffix); err != nil {
			return "", err
		} else if !free {
			continue
		}
		if err := move(src, dst); err != nil {
			return "", err
		}
		return dst, nil
	}
	return "", fmt.Errorf("move %s: no free name in %s", src, dir)
}

// isFree reports whether nothing exists at path.
func isFree(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, fs.ErrNotExist):
		return true, nil
	}
	return false, fmt.Errorf("check %s: %w", path, err)
}

// move renames src to dst, copying and deleting across file systems.
func move(src, dst string) error {
	err := os.Rename(src, dst)
	if err == nil || !errors.Is(err, syscall.EXDEV) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("move %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("move %s: %w", src, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return fmt.Errorf("move %s to %s: copy: %w", src, dst, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(dst)
		return fmt.Errorf("move %s to %s: sync: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		os.Remove(dst)
		return fmt.Errorf("move %s to %s: %w", src, dst, err)
	}
	if err := os.Remove(src); err != nil {
		return fmt.Errorf("move %s: remove after copy: %w", src, err)
	}
	return nil
}
