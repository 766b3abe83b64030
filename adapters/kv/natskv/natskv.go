// Package natskv is the nats backend of node persistence (package
// adapters/kv): values kept in a NATS JetStream key-value bucket, so
// that they outlive restarts and are shared by every process that uses
// the same bucket (the workers of one channel on several machines).
//
// In YAML (the package registers backend nats with the kv provider from
// its init; adapters/component/all imports it):
//
//	providers:
//	  state: {kv: {backend: nats, url: nats://127.0.0.1:4222, bucket: orders_state}}
//	  local: {kv: {backend: nats}}   # the embedded server under the data folder, bucket svcflow_kv
//
// In Go, [Open] returns a *kv.Store over a bucket, and [NewBackend] the
// kv.Backend itself.
//
// Without url, the backend uses the nats-server embedded in the process,
// with JetStream stored under the data folder (data/nats), the same one
// the nats sources, sinks and bus transport without url use. The bucket
// is made when missing (file storage, one value per key kept, the
// replicas asked); an existing bucket is used as it is, except that
// replicas that differ from those asked are an error.
//
// # Keys
//
// NATS key-value keys allow only the characters -/_=.a-zA-Z0-9, and a
// dot separates tokens. A value saved under key K of node N in channel C
// (scope "C/N") is kept under the bucket key
//
//	escape("C/N") + "." + escape(K)
//
// where escape keeps the characters -/=a-zA-Z0-9 as they are and writes
// every other byte (dots, underscores, spaces, non-ASCII) as _XX, its
// two upper-case hex digits; the empty text is "_". So "orders/poller"
// and "last_id" are kept under "orders/poller.last_5Fid", and no two
// scopes and keys share a bucket key. An escaped part longer than 256
// characters is replaced by "_h" and the hex SHA-256 of the original
// text (so no key is too long for a subject).
package natskv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/kv"
	"github.com/svcflow/svcflow/adapters/nats"
)

// DefaultBucket is the bucket of a backend that names none.
const DefaultBucket = "svcflow_kv"

// Options say where the bucket is.
type Options struct {
	// URL is the servers' URLs (nats://host:4222); none: the server
	// embedded in the process under DataDir/nats, listening on Listen
	// (default 127.0.0.1:4222; port 0: any free port), shared with the
	// process's other users of that folder (which must name the same
	// Listen). A DataDir of "" means the embedded server the process runs
	// already, when it runs exactly one, else one under ./data/nats.
	URL     []string
	Listen  string
	DataDir string
	// Bucket is the key-value bucket (default DefaultBucket), made when
	// missing with Replicas replicas (default 1).
	Bucket   string
	Replicas int
	// Logger gets the connection's logs (default slog.Default()).
	Logger *slog.Logger
}

// Backend is the kv.Backend over a JetStream key-value bucket. It is safe
// for concurrent use.
type Backend struct {
	conn   *nats.Conn
	bucket jetstream.KeyValue
	name   string

	mu     sync.RWMutex
	closed bool
}

// NewBackend connects and returns the backend over the bucket of o,
// making the bucket when missing.
func NewBackend(ctx context.Context, o Options) (*Backend, error) {
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	conn, err := nats.Connect(ctx, "kv "+o.Bucket, o.URL, o.Listen, o.DataDir, o.Logger)
	if err != nil {
		return nil, fmt.Errorf("kv nats bucket %s: %w", o.Bucket, err)
	}
	bucket, err := ensureBucket(ctx, conn.JetStream(), o.Bucket, o.Replicas)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("kv nats bucket %s: %w", o.Bucket, err)
	}
	return &Backend{conn: conn, bucket: bucket, name: o.Bucket}, nil
}

// ErrReplicas is returned (wrapped) when the bucket exists with replicas
// other than those asked.
var ErrReplicas = errors.New("the bucket exists with other replicas")

func ensureBucket(ctx context.Context, js jetstream.JetStream, name string, replicas int) (jetstream.KeyValue, error) {
	b, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		b, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, Storage: jetstream.FileStorage, Replicas: replicas, History: 1})
		if errors.Is(err, jetstream.ErrBucketExists) { // made by another process meanwhile
			b, err = js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, err
	}
	st, err := b.Status(ctx)
	if err != nil {
		return nil, err
	}
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok && bs.StreamInfo().Config.Replicas != replicas {
		have := bs.StreamInfo().Config.Replicas
		return nil, fmt.Errorf("%w: declared %d, server %d (change the bucket, or the declaration, explicitly)", ErrReplicas, replicas, have)
	}
	return b, nil
}

// Open returns a kv.Store over the bucket of o.
func Open(ctx context.Context, o Options) (*kv.Store, error) {
	b, err := NewBackend(ctx, o)
	if err != nil {
		return nil, err
	}
	return kv.New(b), nil
}

// Key returns the bucket key of key in scope (see the package doc).
func Key(scope, key string) string { return escape(scope) + "." + escape(key) }

// maxPart is the longest escaped part kept as it is.
const maxPart = 256

func escape(s string) string {
	if s == "" {
		return "_"
	}
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '/', c == '=':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
			b.WriteByte(hexd[c>>4])
			b.WriteByte(hexd[c&15])
		}
	}
	if b.Len() > maxPart {
		sum := sha256.Sum256([]byte(s))
		return "_h" + hex.EncodeToString(sum[:])
	}
	return b.String()
}

func (b *Backend) check() error {
	if b.closed {
		return fmt.Errorf("kv nats bucket %s: %w", b.name, kv.ErrClosed)
	}
	return nil
}

// Get returns the value under scope and key.
func (b *Backend) Get(ctx context.Context, scope, key string) ([]byte, bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.check(); err != nil {
		return nil, false, err
	}
	e, err := b.bucket.Get(ctx, Key(scope, key))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("kv nats bucket %s: get: %w", b.name, err)
	}
	return e.Value(), true, nil
}

// Put stores value under scope and key.
func (b *Backend) Put(ctx context.Context, scope, key string, value []byte) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.check(); err != nil {
		return err
	}
	if _, err := b.bucket.Put(ctx, Key(scope, key), value); err != nil {
		return fmt.Errorf("kv nats bucket %s: put: %w", b.name, err)
	}
	return nil
}

// Delete removes the value under scope and key (a delete marker in the
// bucket).
func (b *Backend) Delete(ctx context.Context, scope, key string) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.check(); err != nil {
		return err
	}
	if err := b.bucket.Delete(ctx, Key(scope, key)); err != nil {
		return fmt.Errorf("kv nats bucket %s: delete: %w", b.name, err)
	}
	return nil
}

// Close closes the connection (and releases the embedded server). The
// bucket and its values stay on the server.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		b.conn.Close()
	}
	return nil
}

func init() {
	kv.RegisterBackend("nats", func(env component.Env, s kv.Spec) (func(context.Context) (kv.Backend, error), error) {
		if s.Replicas < 0 {
			return nil, component.FieldErrorf("replicas", "expected 1 or more, got %d", s.Replicas)
		}
		if s.Bucket != "" && !validBucket(s.Bucket) {
			return nil, component.FieldErrorf("bucket", "%q is not a bucket name: expected letters, digits, - and _", s.Bucket)
		}
		o := Options{URL: s.URL, Listen: s.Listen, DataDir: env.DataDir, Bucket: s.Bucket, Replicas: s.Replicas, Logger: env.Logger}
		if err := nats.CheckWhere(o.URL, o.Listen); err != nil {
			return nil, err
		}
		return func(ctx context.Context) (kv.Backend, error) { return NewBackend(ctx, o) }, nil
	})
}

func validBucket(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}
