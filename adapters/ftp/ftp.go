package ftp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	jftp "github.com/jlaffaye/ftp"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/message"
	flowerrors "github.com/svcflow/svcflow/errors"
)

// Meta keys set on every file's message.
const (
	// MetaName is the file's base name.
	MetaName = "ftp.name"
	// MetaPath is the file's path on the server (Folder joined with the name).
	MetaPath = "ftp.path"
	// MetaSize is the file's size in bytes, in decimal.
	MetaSize = "ftp.size"
	// MetaModTime is the file's modification time as the server lists it,
	// RFC 3339 in UTC ("" when the server gives none).
	MetaModTime = "ftp.modtime"
	// MetaAddress is the server's address as configured.
	MetaAddress = "ftp.address"
)

// What happens to a file once its message is done (Spec.After).
const (
	AfterDelete = "delete"
	AfterMove   = "move"
	AfterKeep   = "keep"
)

// ErrInvalid is returned (wrapped) by New for a bad spec.
var ErrInvalid = errors.New("invalid ftp source")

// Spec configures an FTP watcher. The zero value of a field means its
// default (the default tag), in Go as in YAML.
type Spec struct {
	Address            string        `yaml:"address" spec:"required,scalar" doc:"the FTP server, host:port (port 21 when omitted)"`
	User               string        `yaml:"user" default:"anonymous" doc:"the user to log in as"`
	Password           string        `yaml:"password" doc:"the password (write ${VAR} or ${file:PATH} to keep it out of the file)"`
	Folder             string        `yaml:"folder" default:"/" doc:"the folder to watch on the server"`
	Regex              string        `yaml:"regex" doc:"take only files whose base name matches this regular expression (Go syntax)"`
	Glob               string        `yaml:"glob" default:"*" doc:"take only files whose base name matches this glob (path.Match syntax)"`
	Every              time.Duration `yaml:"every" default:"30s" doc:"how often the folder is listed"`
	After              string        `yaml:"after" default:"delete" enum:"delete,move,keep" doc:"what happens to a file once its message is done"`
	MoveTo             string        `yaml:"move_to" doc:"the folder done files go to with after: move (default: done under folder)"`
	Failed             string        `yaml:"failed" doc:"the folder failed and rejected files go to (default: failed files stay, rejected ones are settled as done)"`
	MaxFiles           int           `yaml:"max_files" default:"100" doc:"the most files taken per poll"`
	MaxSize            int64         `yaml:"max_size" default:"67108864" doc:"the largest file taken, in bytes; larger ones are skipped and logged"`
	Retries            int           `yaml:"retries" default:"5" doc:"attempts at a download, delete or move, each on a new connection after a failure"`
	Timeout            time.Duration `yaml:"timeout" default:"30s" doc:"bound on the dial and on each read or write of a connection"`
	TLS                string        `yaml:"tls" default:"none" enum:"none,explicit" doc:"TLS: none, or explicit (AUTH TLS, then the control and data connections encrypted)"`
	InsecureSkipVerify bool          `yaml:"insecure_skip_verify" doc:"with tls, accept any server certificate (tests only)"`
}

// Option configures a Source beyond its Spec.
type Option func(*Source)

// WithName names the source (default "ftp ADDRESS/FOLDER").
func WithName(name string) Option { return func(s *Source) { s.name = name } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Source) { s.log = l } }

// WithTLSConfig sets the TLS configuration used with Spec.TLS explicit
// (default: the host of Address as server name, and
// Spec.InsecureSkipVerify).
func WithTLSConfig(c *tls.Config) Option { return func(s *Source) { s.tlsConf = c } }

// Source is an FTP watcher: a [channel.Source]. Run it once at a time; it
// is safe to call Connect, Addr and Close from other goroutines.
type Source struct {
	spec    Spec
	name    string
	log     *slog.Logger
	re      *regexp.Regexp
	tlsConf *tls.Config
	policy  flowerrors.Policy

	mu        sync.Mutex
	conn      *jftp.ServerConn
	connected bool // a connection was made once
}

var _ channel.Source = (*Source)(nil)

// New checks s and returns a source that connects to nothing until
// Connect or Run.
func New(s Spec, opts ...Option) (*Source, error) {
	if s.Address == "" {
		return nil, fmt.Errorf("ftp: %w: empty address", ErrInvalid)
	}
	if _, _, err := net.SplitHostPort(s.Address); err != nil {
		s.Address = net.JoinHostPort(s.Address, "21")
		if _, _, err := net.SplitHostPort(s.Address); err != nil {
			return nil, fmt.Errorf("ftp: address %q: %w: %v", s.Address, ErrInvalid, err)
		}
	}
	if s.User == "" {
		s.User = "anonymous"
	}
	if s.Folder == "" {
		s.Folder = "/"
	}
	if s.Glob == "" {
		s.Glob = "*"
	}
	if _, err := path.Match(s.Glob, ""); err != nil {
		return nil, fieldErr("glob", "%q: %v", s.Glob, err)
	}
	src := &Source{spec: s}
	if s.Regex != "" {
		re, err := regexp.Compile(s.Regex)
		if err != nil {
			return nil, fieldErr("regex", "%q: %v", s.Regex, err)
		}
		src.re = re
	}
	for _, d := range []struct {
		field string
		v     *time.Duration
		def   time.Duration
	}{{"every", &src.spec.Every, 30 * time.Second}, {"timeout", &src.spec.Timeout, 30 * time.Second}} {
		if *d.v < 0 {
			return nil, fieldErr(d.field, "must be positive, got %s", *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	switch {
	case s.MaxFiles < 0:
		return nil, fieldErr("max_files", "must be positive, got %d", s.MaxFiles)
	case s.MaxSize < 0:
		return nil, fieldErr("max_size", "must be positive, got %d", s.MaxSize)
	case s.Retries < 0:
		return nil, fieldErr("retries", "must be positive, got %d", s.Retries)
	}
	if src.spec.MaxFiles == 0 {
		src.spec.MaxFiles = 100
	}
	if src.spec.MaxSize == 0 {
		src.spec.MaxSize = 64 << 20
	}
	if src.spec.Retries == 0 {
		src.spec.Retries = 5
	}
	switch s.After {
	case "":
		src.spec.After = AfterDelete
	case AfterDelete, AfterKeep:
		if s.MoveTo != "" {
			return nil, fieldErr("move_to", "only after: move moves files, after is %s", s.After)
		}
	case AfterMove:
		if src.spec.MoveTo == "" {
			src.spec.MoveTo = path.Join(s.Folder, "done")
		}
	default:
		return nil, fieldErr("after", "expected delete, move or keep, got %q", s.After)
	}
	if src.spec.MoveTo != "" && !path.IsAbs(src.spec.MoveTo) {
		src.spec.MoveTo = path.Join(s.Folder, src.spec.MoveTo)
	}
	if src.spec.Failed != "" && !path.IsAbs(src.spec.Failed) {
		src.spec.Failed = path.Join(s.Folder, src.spec.Failed)
	}
	switch s.TLS {
	case "", "none":
		src.spec.TLS = "none"
	case "explicit":
	default:
		return nil, fieldErr("tls", "expected none or explicit, got %q", s.TLS)
	}
	src.policy = flowerrors.Policy{Initial: 100 * time.Millisecond, MaxInterval: 5 * time.Second, MaxAttempts: src.spec.Retries, RetryAll: true}
	for _, o := range opts {
		o(src)
	}
	if src.name == "" {
		src.name = "ftp " + src.spec.Address + src.spec.Folder
	}
	if src.log == nil {
		src.log = slog.Default()
	}
	if src.spec.TLS != "none" && src.tlsConf == nil {
		host, _, _ := net.SplitHostPort(src.spec.Address)
		src.tlsConf = &tls.Config{ServerName: host, InsecureSkipVerify: s.InsecureSkipVerify, ClientSessionCache: tls.NewLRUClientSessionCache(4)} //nolint:gosec // asked for
	}
	return src, nil
}

// fieldErr is an ErrInvalid error about one spec field, which a
// configuration reader reports at the field's position.
func fieldErr(field, format string, args ...any) error {
	return &component.FieldError{Field: field, Err: invalid(fmt.Sprintf(format, args...))}
}

// invalid is the text of a spec error; errors.Is(err, ErrInvalid) holds.
type invalid string

func (e invalid) Error() string { return string(e) }

func (e invalid) Is(target error) bool { return target == ErrInvalid }

// Name implements channel.Source.
func (s *Source) Name() string { return s.name }

// Spec returns the spec with its defaults filled in.
func (s *Source) Spec() Spec { return s.spec }

// FileID returns the message ID of a file: a UUID (version 5) derived from
// its path, size and modification time. The same file listed again has the
// same ID.
func FileID(filePath string, size int64, mod time.Time) string {
	key := filePath + "\n" + strconv.FormatInt(size, 10) + "\n"
	if !mod.IsZero() {
		key += mod.UTC().Format(time.RFC3339Nano)
	}
	return uuid.NewSHA1(idSpace, []byte(key)).String()
}

var idSpace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/svcflow/svcflow/adapters/ftp"))

// Connect makes the first connection: dial, log in and list the folder.
// Its error names the address. Run calls it when it was not called.
func (s *Source) Connect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		return nil
	}
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	if _, err := c.List(s.spec.Folder); err != nil {
		_ = c.Quit()
		return fmt.Errorf("ftp %s: list %s: %w", s.spec.Address, s.spec.Folder, err)
	}
	s.conn, s.connected = c, true
	return nil
}

// Addr returns the address when connected, else "".
func (s *Source) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return ""
	}
	return s.spec.Address
}

// Close closes the connection, if any.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked()
	return nil
}

func (s *Source) dropLocked() {
	if s.conn != nil {
		_ = s.conn.Quit()
		s.conn = nil
	}
}

// drop closes the current connection after a failure.
func (s *Source) drop() {
	s.mu.Lock()
	s.dropLocked()
	s.mu.Unlock()
}

// dial connects and logs in.
func (s *Source) dial(ctx context.Context) (*jftp.ServerConn, error) {
	d := &net.Dialer{Timeout: s.spec.Timeout}
	first := true
	var dmu sync.Mutex
	dial := func(network, addr string) (net.Conn, error) {
		dmu.Lock()
		control := first
		first = false
		dmu.Unlock()
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		var conn net.Conn = &idleConn{Conn: c, d: s.spec.Timeout}
		// Explicit TLS: the client upgrades the control connection after
		// AUTH TLS; the data connections are TLS from the start.
		if s.spec.TLS == "explicit" && !control {
			conn = tls.Client(conn, s.tlsConf)
		}
		return conn, nil
	}
	opts := []jftp.DialOption{jftp.DialWithDialFunc(dial), jftp.DialWithShutTimeout(s.spec.Timeout)}
	if s.spec.TLS == "explicit" {
		opts = append(opts, jftp.DialWithExplicitTLS(s.tlsConf))
	}
	c, err := jftp.Dial(s.spec.Address, opts...)
	if err != nil {
		return nil, fmt.Errorf("ftp %s: connect: %w", s.spec.Address, err)
	}
	if err := c.Login(s.spec.User, s.spec.Password); err != nil {
		_ = c.Quit()
		return nil, fmt.Errorf("ftp %s: login as %s: %w", s.spec.Address, s.spec.User, err)
	}
	return c, nil
}

// idleConn bounds each read and write by d.
type idleConn struct {
	net.Conn
	d time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.d))
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.d))
	return c.Conn.Write(p)
}

// session returns the connection, making one when there is none: at
// once for the first ever, else with a backoff until ctx ends.
func (s *Source) session(ctx context.Context) (*jftp.ServerConn, error) {
	s.mu.Lock()
	if s.conn != nil {
		c := s.conn
		s.mu.Unlock()
		return c, nil
	}
	s.mu.Unlock()
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
	return c, nil
}

// reconnect waits for a connection, trying with a backoff (100ms doubling
// to 5s) until ctx ends.
func (s *Source) reconnect(ctx context.Context) (*jftp.ServerConn, error) {
	wait := 100 * time.Millisecond
	for {
		c, err := s.session(ctx)
		if err == nil {
			return c, nil
		}
		s.log.Warn("ftp: connection failed; trying again", "source", s.name, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// with runs fn on a connection, with the retry policy: a failure drops
// the connection and the next attempt makes a new one. A permanent error
// (see permanent) is not tried again.
func (s *Source) with(ctx context.Context, fn func(c *jftp.ServerConn) error) error {
	_, err := s.policy.Do(ctx, func(ctx context.Context, _ int) error {
		c, err := s.session(ctx)
		if err != nil {
			return err
		}
		err = fn(c)
		if err != nil && !permanent(err) {
			s.drop()
		}
		if permanent(err) {
			return &flowerrors.StopError{Reason: err.Error(), Cause: err} // not retried
		}
		return err
	})
	return err
}

// permanent reports a 5xx reply (a missing file, no permission): another
// connection would get the same.
func permanent(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500 && te.Code < 600
}

// entry is a listed file.
type entry struct {
	name, path string
	size       int64
	mod        time.Time
	id         string
}

// Run implements channel.Source: it connects (see Connect), then lists
// the folder every Spec.Every and hands the files over one at a time,
// until ctx is canceled. The message being handled when ctx is canceled
// finishes and is settled; Run then closes the connection and returns
// nil.
func (s *Source) Run(ctx context.Context, h channel.Handler) error {
	if h == nil {
		return fmt.Errorf("ftp: %s: nil handler", s.name)
	}
	if err := s.Connect(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer func() { _ = s.Close() }()
	hctx := context.WithoutCancel(ctx)
	seen := map[string]bool{}           // kept, rejected or failed files: not taken again in this run
	notBefore := map[string]time.Time{} // nacked files
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		started := time.Now()
		s.poll(ctx, hctx, h, seen, notBefore)
		timer.Reset(max(0, time.Until(started.Add(s.spec.Every))))
	}
}

// poll lists the folder once and handles what it finds.
func (s *Source) poll(ctx, hctx context.Context, h channel.Handler, seen map[string]bool, notBefore map[string]time.Time) {
	if _, err := s.reconnect(ctx); err != nil {
		return
	}
	var files []entry
	err := s.with(ctx, func(c *jftp.ServerConn) error {
		list, err := c.List(s.spec.Folder)
		if err != nil {
			return err
		}
		files = s.match(list)
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("ftp: listing failed", "source", s.name, "folder", s.spec.Folder, "err", err)
		}
		return
	}
	listed := make(map[string]bool, len(files))
	taken := 0
	for _, f := range files {
		listed[f.id] = true
		if ctx.Err() != nil || taken >= s.spec.MaxFiles || seen[f.id] || time.Now().Before(notBefore[f.id]) {
			continue
		}
		if f.size > s.spec.MaxSize {
			s.log.Error("ftp: file larger than max_size skipped", "source", s.name, "path", f.path, "size", f.size, "max_size", s.spec.MaxSize)
			seen[f.id] = true
			continue
		}
		taken++
		data, err := s.download(ctx, f)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("ftp: download failed; the file is tried again at the next poll", "source", s.name, "path", f.path, "err", err)
			}
			continue
		}
		m := s.message(f, data)
		res := h.Handle(channel.WaitWhenBusy(hctx), m)
		s.settle(hctx, f, res, seen, notBefore)
	}
	// Forget what is no longer listed (moved or deleted by someone else).
	for id := range seen {
		if !listed[id] {
			delete(seen, id)
		}
	}
	for id := range notBefore {
		if !listed[id] {
			delete(notBefore, id)
		}
	}
}

// match keeps the regular files whose name matches, sorted by name.
func (s *Source) match(list []*jftp.Entry) []entry {
	var out []entry
	for _, e := range list {
		if e.Type != jftp.EntryTypeFile || e.Name == "" || strings.Contains(e.Name, "/") {
			continue
		}
		if ok, _ := path.Match(s.spec.Glob, e.Name); !ok {
			continue
		}
		if s.re != nil && !s.re.MatchString(e.Name) {
			continue
		}
		p := path.Join(s.spec.Folder, e.Name)
		size := int64(min(e.Size, uint64(1<<62)))
		out = append(out, entry{name: e.Name, path: p, size: size, mod: e.Time, id: FileID(p, size, e.Time)})
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return out
}

// errShort is a download that ended before the listed size.
var errShort = errors.New("download ended short of the listed size")

// download reads a whole file, trying again on new connections.
func (s *Source) download(ctx context.Context, f entry) ([]byte, error) {
	var data []byte
	err := s.with(ctx, func(c *jftp.ServerConn) error {
		r, err := c.Retr(f.path)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		buf.Grow(int(f.size))
		_, rerr := io.Copy(&buf, io.LimitReader(r, s.spec.MaxSize+1))
		cerr := r.Close() // reads the transfer's final reply
		if rerr != nil {
			return rerr
		}
		if cerr != nil {
			return cerr
		}
		if int64(buf.Len()) != f.size {
			return fmt.Errorf("%w: %d of %d bytes", errShort, buf.Len(), f.size)
		}
		data = buf.Bytes()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ftp %s: download %s: %w", s.spec.Address, f.path, err)
	}
	return data, nil
}

// message builds a file's message.
func (s *Source) message(f entry, data []byte) *message.Message {
	mod := ""
	if !f.mod.IsZero() {
		mod = f.mod.UTC().Format(time.RFC3339Nano)
	}
	return &message.Message{
		ID:          f.id,
		Time:        time.Now().UTC(),
		ContentType: contentType(f.name, data),
		Payload:     data,
		Meta: map[string]string{
			MetaName:    f.name,
			MetaPath:    f.path,
			MetaSize:    strconv.FormatInt(f.size, 10),
			MetaModTime: mod,
			MetaAddress: s.spec.Address,
		},
	}
}

// settle deletes, moves or keeps a handled file.
func (s *Source) settle(ctx context.Context, f entry, res channel.Result, seen map[string]bool, notBefore map[string]time.Time) {
	log := s.log.With("source", s.name, "path", f.path, "id", f.id)
	switch res.Settle {
	case channel.Nack:
		notBefore[f.id] = time.Now().Add(res.RetryAfter)
		log.Warn("ftp: file not processed; handed over again later", "retry_after", res.RetryAfter, "err", res.Err)
		return
	case channel.Leave:
		log.Warn("ftp: file left; handed over again at the next poll", "state", res.State, "err", res.Err)
		return
	}
	failed := res.Settle == channel.Fail || res.Outcome == flowerrors.KindStop
	if failed && s.spec.Failed != "" {
		if err := s.move(ctx, f, s.spec.Failed); err != nil {
			log.Error("ftp: moving the failed file failed", "to", s.spec.Failed, "err", err)
			return
		}
		log.Warn("ftp: file failed", "to", s.spec.Failed, "state", res.State, "err", res.Err)
		return
	}
	if res.Settle == channel.Fail {
		seen[f.id] = true
		log.Error("ftp: file failed; left in place, tried again when the source next starts", "state", res.State, "error_id", res.ErrorID, "err", res.Err)
		return
	}
	var err error
	switch s.spec.After {
	case AfterDelete:
		err = s.with(ctx, func(c *jftp.ServerConn) error { return c.Delete(f.path) })
	case AfterMove:
		err = s.move(ctx, f, s.spec.MoveTo)
	case AfterKeep:
		seen[f.id] = true
	}
	if err != nil {
		log.Error("ftp: settling the file failed; it is settled when seen again", "after", s.spec.After, "err", err)
	}
}

// move renames a file into dir, making dir when missing.
func (s *Source) move(ctx context.Context, f entry, dir string) error {
	to := path.Join(dir, f.name)
	return s.with(ctx, func(c *jftp.ServerConn) error {
		err := c.Rename(f.path, to)
		if err != nil && permanent(err) {
			// The folder may be missing: make it and try once more.
			if merr := c.MakeDir(dir); merr == nil || permanent(merr) {
				err = c.Rename(f.path, to)
			}
		}
		return err
	})
}

// contentType chooses a content type from a file's extension, else from
// whether its content is UTF-8 text.
func contentType(name string, data []byte) string {
	switch strings.ToLower(path.Ext(name)) {
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
