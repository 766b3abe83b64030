package kv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync/atomic"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// sqliteBackend keeps values in a table kv of an SQLite file.
type sqliteBackend struct {
	db     *sql.DB
	path   string
	closed atomic.Bool
}

const kvPragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"

// OpenSQLite opens (creating it if needed) a store in the SQLite file at
// path: values survive restarts (a write that returned survives a crash
// of the process). ":memory:" keeps it in memory.
func OpenSQLite(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("kv: empty path")
	}
	dsn := ":memory:?" + kvPragmas
	if path != ":memory:" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		dsn = (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String() + "?" + kvPragmas
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("kv %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one writer; ":memory:" is one database per connection
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	if _, err := db.ExecContext(context.Background(), `CREATE TABLE IF NOT EXISTS kv (
		scope TEXT NOT NULL,
		key TEXT NOT NULL,
		value BLOB NOT NULL,
		PRIMARY KEY (scope, key)
	)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("kv %s: %w", path, err)
	}
	return New(&sqliteBackend{db: db, path: path}), nil
}

func (b *sqliteBackend) Get(ctx context.Context, scope, key string) ([]byte, bool, error) {
	var v []byte
	err := b.db.QueryRowContext(ctx, `SELECT value FROM kv WHERE scope = ? AND key = ?`, scope, key).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, b.fail(err)
	}
	return v, true, nil
}

func (b *sqliteBackend) Put(ctx context.Context, scope, key string, value []byte) error {
	_, err := b.db.ExecContext(ctx, `INSERT INTO kv (scope, key, value) VALUES (?, ?, ?)
		ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value`, scope, key, value)
	return b.fail(err)
}

func (b *sqliteBackend) Delete(ctx context.Context, scope, key string) error {
	_, err := b.db.ExecContext(ctx, `DELETE FROM kv WHERE scope = ? AND key = ?`, scope, key)
	return b.fail(err)
}

func (b *sqliteBackend) Close() error {
	b.closed.Store(true)
	return b.db.Close()
}

func (b *sqliteBackend) fail(err error) error {
	if err == nil {
		return nil
	}
	if b.closed.Load() {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return fmt.Errorf("%s: %w", b.path, err)
}
