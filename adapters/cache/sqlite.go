package cache

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// SQLite is a [Cache] in an SQLite file: values survive restarts until
// they expire. Expired rows are deleted when read and when the cache is
// opened.
type SQLite struct {
	opts   Options
	db     *sql.DB
	path   string
	closed atomic.Bool
}

const cachePragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"

// OpenSQLite opens (creating it if needed) the cache in the SQLite file at
// path; ":memory:" keeps it in memory.
func OpenSQLite(path string, opts Options) (*SQLite, error) {
	if path == "" {
		return nil, errors.New("cache: empty path")
	}
	dsn := ":memory:?" + cachePragmas
	if path != ":memory:" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		dsn = (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String() + "?" + cachePragmas
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("cache %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one writer; ":memory:" is one database per connection
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	c := &SQLite{opts: opts, db: db, path: path}
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS cache (
		key TEXT PRIMARY KEY,
		value BLOB NOT NULL,
		expires INTEGER NOT NULL -- unix nanoseconds; 0: never
	)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("cache %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM cache WHERE expires != 0 AND expires <= ?`, opts.now().UnixNano()); err != nil {
		db.Close()
		return nil, fmt.Errorf("cache %s: %w", path, err)
	}
	return c, nil
}

// Get implements [Cache].
func (c *SQLite) Get(ctx context.Context, key string, dst any) (bool, error) {
	var data []byte
	var expires int64
	err := c.db.QueryRowContext(ctx, `SELECT value, expires FROM cache WHERE key = ?`, key).Scan(&data, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, c.fail("get", key, err)
	}
	if expires != 0 && c.opts.now().UnixNano() >= expires {
		if _, err := c.db.ExecContext(ctx, `DELETE FROM cache WHERE key = ? AND expires = ?`, key, expires); err != nil {
			return false, c.fail("get", key, err)
		}
		return false, nil
	}
	if err := json.Unmarshal(data, dst); err != nil {
		return false, fmt.Errorf("cache get %q: %w", key, err)
	}
	return true, nil
}

// Put implements [Cache].
func (c *SQLite) Put(ctx context.Context, key string, v any, ttl time.Duration) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cache put %q: %w", key, err)
	}
	var expires int64
	if t := c.opts.expiry(ttl); !t.IsZero() {
		expires = t.UnixNano()
	}
	_, err = c.db.ExecContext(ctx, `INSERT INTO cache (key, value, expires) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires`, key, data, expires)
	return c.fail("put", key, err)
}

// Delete implements [Cache].
func (c *SQLite) Delete(ctx context.Context, key string) error {
	_, err := c.db.ExecContext(ctx, `DELETE FROM cache WHERE key = ?`, key)
	return c.fail("delete", key, err)
}

// Close implements [Cache].
func (c *SQLite) Close() error {
	c.closed.Store(true)
	return c.db.Close()
}

func (c *SQLite) fail(op, key string, err error) error {
	if err == nil {
		return nil
	}
	if c.closed.Load() {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return fmt.Errorf("cache %s %q (%s): %w", op, key, c.path, err)
}
