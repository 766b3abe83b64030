// Package sqlite is a message store (a [store.Store]) in an SQLite
// database, through the pure-Go modernc.org/sqlite driver, so builds need
// no C compiler. It is the store a channel served by flowrun gets unless
// its configuration names another: a database in WAL mode that survives
// crashes, with indexes for searching by state and time.
//
// Writes are group-committed (see [Options]): the writes of concurrent
// callers share transactions, and each caller returns once its write has
// committed. How durable a commit is is the [Sync] option: by default
// (SyncNormal) it survives a crash of the process; SyncFull survives a
// power loss too, for an fsync per batch.
//
// Importing this package links the SQLite driver; a program that imports
// only package store links none.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	flowerrors "github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/internal/jsonenc"
	"github.com/svcflow/svcflow/internal/storeutil"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Store is a [store.Store] backed by an SQLite database, through the
// pure-Go modernc.org/sqlite driver (no cgo). The database runs in WAL
// mode. By default (SyncNormal) a write that returned survives a crash of
// the process, and a power loss may lose only the last transactions,
// never corrupt the database; with SyncFull it survives a power loss too
// (see [Sync]).
//
// Writes are group-committed (see [Options]): on a single connection,
// the writes queued by concurrent callers are committed in one
// transaction, and each caller returns once its write has committed.
// Reads use a small pool of read-only connections and see a consistent
// snapshot.
type Store struct {
	path string
	opts Options
	life storeutil.Life

	wq      writeQueue   // group commit (see writer.go)
	batches atomic.Int64 // batches run, for tests

	w *sql.DB // the single writing connection
	r *sql.DB // read-only connections; the same as w for ":memory:"

	insertMsg, insertFirst, insertBegun *sql.Stmt     // on w
	update, insertHist                  *sql.Stmt     // on w
	updateOutcome, insertHistOutcome    *sql.Stmt     // on w
	getMsg, getHist                     *sql.Stmt     // on r
	jr                                  *journalStmts // the journal of durable runs (journal.go)

	mu    sync.Mutex
	cache map[string]*sql.Stmt // search statements by SQL text, on r
}

var _ store.Store = (*Store)(nil)

// SchemaVersion is the version of the database schema this package
// writes, kept in the database's user_version pragma. Open upgrades
// older databases in place and refuses newer ones.
//
// Version 2 added the outcome and reason columns to messages and history:
// the records of a version-1 database read back with a zero Outcome and
// an empty Reason.
const SchemaVersion = 2

// ErrSchema is returned (wrapped) by Open for a database whose schema
// is newer than SchemaVersion.
var ErrSchema = errors.New("database schema is newer than this program")

// migrations[i] upgrades a database from schema version i to i+1.
var migrations = [][]string{
	{
		`CREATE TABLE messages (
			id           TEXT NOT NULL PRIMARY KEY,
			time         TEXT NOT NULL, -- message time, UTC, fixed width: sorts as text
			content_type TEXT NOT NULL,
			payload      BLOB,          -- NULL when the payload is nil
			meta         TEXT,          -- JSON object; NULL when nil
			context      TEXT,          -- JSON object; NULL when nil
			trace        TEXT,          -- JSON; NULL when nil
			state        TEXT NOT NULL,
			err          TEXT NOT NULL,
			attempts     INTEGER NOT NULL,
			updated      TEXT NOT NULL
		)`,
		`CREATE INDEX messages_time ON messages (time, id)`,
		`CREATE INDEX messages_state_time ON messages (state, time, id)`,
		`CREATE TABLE history (
			message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
			seq        INTEGER NOT NULL,
			state      TEXT NOT NULL,
			at         TEXT NOT NULL,
			err        TEXT NOT NULL,
			PRIMARY KEY (message_id, seq)
		) WITHOUT ROWID`,
	},
	{
		// The run's outcome (an errors.Kind by name; '' when none) and
		// the Stop reason of a rejection ('' otherwise).
		`ALTER TABLE messages ADD COLUMN outcome TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE messages ADD COLUMN reason TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE history ADD COLUMN outcome TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE history ADD COLUMN reason TEXT NOT NULL DEFAULT ''`,
	},
}

// pragmas are applied to every connection.
const pragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)"

// pragmasFull are the pragmas of the writing connection with SyncFull.
const pragmasFull = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(ON)"

// timeLayout formats times with a fixed width, so that they sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

const (
	sqlInsertMsg = `INSERT INTO messages (id, time, content_type, payload, meta, context, trace, state, err, attempts, updated)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?) ON CONFLICT (id) DO NOTHING`
	sqlInsertFirst = `INSERT INTO history (message_id, seq, state, at, err) VALUES (?, 1, 'pending', ?, '')`
	// A message begun is stored processing with both transitions.
	sqlInsertBegun = `INSERT INTO history (message_id, seq, state, at, err) VALUES (?1, 1, 'pending', ?2, ''), (?1, 2, 'processing', ?2, '')`
	sqlUpdateSet   = `UPDATE messages SET state = ?, err = ?, attempts = attempts + ?, updated = ?,
		context = coalesce(?, context), trace = coalesce(?, trace)`
	sqlInsertHistSeq = `(?1, (SELECT coalesce(max(seq), 0) + 1 FROM history WHERE message_id = ?1), ?2, ?3, ?4`
	// A transition without an outcome or a reason (entering Processing,
	// or Done: KindOK is the zero Kind) binds neither; the statements that
	// do are used only for rejections and failures.
	sqlUpdate            = sqlUpdateSet + `, outcome = '', reason = '' WHERE id = ?`
	sqlUpdateOutcome     = sqlUpdateSet + `, outcome = ?, reason = ? WHERE id = ?`
	sqlInsertHist        = `INSERT INTO history (message_id, seq, state, at, err) VALUES ` + sqlInsertHistSeq + `)`
	sqlInsertHistOutcome = `INSERT INTO history (message_id, seq, state, at, err, outcome, reason) VALUES ` + sqlInsertHistSeq + `, ?5, ?6)`
	sqlColumns           = `id, time, content_type, payload, payload IS NOT NULL, meta, context, trace, state, err, outcome, reason, attempts, updated`
	sqlGetMsg            = `SELECT ` + sqlColumns + ` FROM messages WHERE id = ?`
	sqlHistColumns       = `state, at, err, outcome, reason`
	sqlGetHist           = `SELECT ` + sqlHistColumns + ` FROM history WHERE message_id = ? ORDER BY seq`
)

// outcomeText is how the outcome column holds k: its name, or the empty
// text for the zero Kind (no outcome given). k is valid: NormalizeUpdate
// checked it.
func outcomeText(k flowerrors.Kind) string {
	if k == 0 {
		return ""
	}
	return k.String()
}

// parseOutcome reads the outcome column (see outcomeText).
func parseOutcome(s string) (flowerrors.Kind, error) {
	if s == "" {
		return 0, nil
	}
	return flowerrors.ParseKind(s)
}

// Open opens (creating it if needed) the SQLite database at path, with
// the default Options, and creates or upgrades its schema. The path
// ":memory:" opens a private in-memory database that lives until Close.
func Open(path string) (*Store, error) {
	return OpenOptions(path, Options{})
}

// OpenOptions is Open with options: how durable a commit is, how big a
// batch of writes may grow. A configuration names them after the path:
// sqlite:data/intake.db?sync=full (see [ParseDSN]).
func OpenOptions(path string, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, &store.OpError{Store: "sqlite", Op: "open", Err: fmt.Errorf("%s: %w", path, err)}
	}
	s, err := open(path, opts)
	if err != nil {
		if werr := folderWritable(path); werr != nil {
			err = fmt.Errorf("%w; the database's folder cannot be written: %w", err, werr)
		}
		return nil, &store.OpError{Store: "sqlite", Op: "open", Err: fmt.Errorf("%s: %w", path, err)}
	}
	return s, nil
}

// folderWritable checks that a file can be made in the folder of the
// database at path, where SQLite makes its log: SQLite's own error for a
// read-only folder ("unable to open database file") does not say so.
func folderWritable(path string) error {
	if path == ":memory:" || path == "" {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".probe-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

func open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: empty path", store.ErrInvalid)
	}
	s := &Store{path: path, opts: opts, cache: make(map[string]*sql.Stmt)}
	wpragmas := pragmas
	if opts.Sync == SyncFull {
		wpragmas = pragmasFull
	}
	var err error
	if path == ":memory:" {
		// Every connection to ":memory:" is a new database: use exactly
		// one, and never let it go.
		if s.w, err = sql.Open("sqlite", ":memory:?"+wpragmas); err != nil {
			return nil, err
		}
		s.w.SetMaxOpenConns(1)
		s.w.SetMaxIdleConns(1)
		s.w.SetConnMaxLifetime(0)
		s.w.SetConnMaxIdleTime(0)
		s.r = s.w
	} else {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
		if s.w, err = sql.Open("sqlite", u.String()+"?"+wpragmas+"&_txlock=immediate"); err != nil {
			return nil, err
		}
		s.w.SetMaxOpenConns(1)
		s.w.SetMaxIdleConns(1)
		s.w.SetConnMaxIdleTime(0)
		if s.r, err = sql.Open("sqlite", u.String()+"?"+pragmas+"&_pragma=query_only(1)"); err != nil {
			s.w.Close()
			return nil, err
		}
		s.r.SetMaxOpenConns(4)
		s.r.SetMaxIdleConns(4)
	}
	if err := s.init(); err != nil {
		s.closeAll()
		return nil, err
	}
	s.wq.more = make(chan struct{}, 1)
	return s, nil
}

// init migrates the schema and prepares the statements.
func (s *Store) init() error {
	ctx := context.Background()
	if err := migrate(ctx, s.w); err != nil {
		return err
	}
	for _, p := range []struct {
		db   *sql.DB
		stmt **sql.Stmt
		sql  string
	}{
		{s.w, &s.insertMsg, sqlInsertMsg},
		{s.w, &s.insertFirst, sqlInsertFirst},
		{s.w, &s.insertBegun, sqlInsertBegun},
		{s.w, &s.update, sqlUpdate},
		{s.w, &s.insertHist, sqlInsertHist},
		{s.w, &s.updateOutcome, sqlUpdateOutcome},
		{s.w, &s.insertHistOutcome, sqlInsertHistOutcome},
		{s.r, &s.getMsg, sqlGetMsg},
		{s.r, &s.getHist, sqlGetHist},
	} {
		st, err := p.db.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		*p.stmt = st
	}
	return s.initJournal(ctx)
}

// migrate brings the schema of db up to SchemaVersion.
func migrate(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("%w: version %d, want at most %d", ErrSchema, v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		if err := migrateStep(ctx, db, v); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", v+1, err)
		}
	}
	return nil
}

func migrateStep(ctx context.Context, db *sql.DB, from int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, stmt := range migrations[from] {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", from+1)); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *Store) fail(op, id string, to store.State, err error) error {
	return &store.OpError{Store: "sqlite", Op: op, ID: id, To: to, Err: err}
}

// nullable returns b, or nil (SQL NULL) when b is nil.
func nullable(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// nullableText returns b as a string, or nil (SQL NULL) when b is nil.
func nullableText(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, m *message.Message) error {
	return s.put(ctx, m, "put", false)
}

// Begin implements store.Store.
func (s *Store) Begin(ctx context.Context, m *message.Message) error {
	return s.put(ctx, m, "begin", true)
}

func (s *Store) put(ctx context.Context, m *message.Message, op string, begin bool) error {
	ctx = storeutil.OrBackground(ctx)
	var id string
	if m != nil {
		id = m.ID
	}
	n, err := store.Normalize(m)
	if err != nil {
		return s.fail(op, id, "", err)
	}
	var meta []byte
	if n.Message.Meta != nil {
		if meta, err = json.Marshal(n.Message.Meta); err != nil {
			return s.fail(op, id, "", fmt.Errorf("%w: encode meta: %w", store.ErrInvalid, err))
		}
	}
	if !s.life.Enter() {
		return s.fail(op, id, "", store.ErrClosed)
	}
	defer s.life.Exit()
	at := formatTime(storeutil.Now())
	state, attempts, hist := store.Pending, 0, s.insertFirst
	if begin {
		state, attempts, hist = store.Processing, 1, s.insertBegun
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		ctx := context.Background()
		res, err := tx.StmtContext(ctx, s.insertMsg).ExecContext(ctx,
			id, formatTime(n.Message.Time), n.Message.ContentType, nullable(n.Message.Payload),
			nullableText(meta), nullableText(n.Context), nullableText(n.Message.Trace), string(state), attempts, at)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return unwritten{store.ErrExists}
		}
		_, err = tx.StmtContext(ctx, hist).ExecContext(ctx, id, at)
		return err
	})
	if err != nil {
		return s.fail(op, id, "", err)
	}
	return nil
}

// Transition implements store.Store.
func (s *Store) Transition(ctx context.Context, id string, to store.State, u store.Update) error {
	ctx = storeutil.OrBackground(ctx)
	nu, err := store.NormalizeUpdate(to, u)
	if err != nil {
		return s.fail("transition", id, to, err)
	}
	if !s.life.Enter() {
		return s.fail("transition", id, to, store.ErrClosed)
	}
	defer s.life.Exit()
	at := formatTime(storeutil.Now())
	attempt := 0
	if to == store.Processing {
		attempt = 1
	}
	update, insertHist := s.update, s.insertHist
	args := []any{string(to), nu.Err, attempt, at, nullableText(nu.Context), nullableText(nu.Trace), id}
	histArgs := []any{id, string(to), at, nu.Err}
	if nu.Outcome != 0 || nu.Reason != "" {
		update, insertHist = s.updateOutcome, s.insertHistOutcome
		outcome := outcomeText(nu.Outcome)
		args = append(args[:6], outcome, nu.Reason, id)
		histArgs = append(histArgs, outcome, nu.Reason)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		ctx := context.Background()
		res, err := tx.StmtContext(ctx, update).ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return unwritten{store.ErrNotFound}
		}
		_, err = tx.StmtContext(ctx, insertHist).ExecContext(ctx, histArgs...)
		return err
	})
	if err != nil {
		return s.fail("transition", id, to, err)
	}
	return nil
}

// read runs f in a read transaction, which sees one snapshot.
func (s *Store) read(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return f(tx)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, id string) (*store.Record, error) {
	ctx = storeutil.OrBackground(ctx)
	if !s.life.Enter() {
		return nil, s.fail("get", id, "", store.ErrClosed)
	}
	defer s.life.Exit()
	var rec *store.Record
	err := s.read(ctx, func(tx *sql.Tx) error {
		recs, err := scanRecords(tx.StmtContext(ctx, s.getMsg).QueryContext(ctx, id))
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return store.ErrNotFound
		}
		rec = recs[0]
		rows, err := tx.StmtContext(ctx, s.getHist).QueryContext(ctx, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			t, err := scanTransition(rows)
			if err != nil {
				return err
			}
			rec.History = append(rec.History, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.fail("get", id, "", err)
	}
	return rec, nil
}

// scanRecords reads the records (without history) from rows, as selected by
// sqlColumns.
func scanRecords(rows *sql.Rows, err error) ([]*store.Record, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Record
	for rows.Next() {
		var (
			m                           message.Message
			tm, state, outcome, updated string
			hasPayload                  bool
			meta, ctxJSON, trace        sql.RawBytes
			rec                         store.Record
		)
		if err := rows.Scan(&m.ID, &tm, &m.ContentType, &m.Payload, &hasPayload,
			&meta, &ctxJSON, &trace, &state, &rec.Err, &outcome, &rec.Reason, &rec.Attempts, &updated); err != nil {
			return nil, err
		}
		if rec.Outcome, err = parseOutcome(outcome); err != nil {
			return nil, fmt.Errorf("message %q: outcome: %w", m.ID, err)
		}
		if m.Time, err = parseTime(tm); err != nil {
			return nil, fmt.Errorf("message %q: time: %w", m.ID, err)
		}
		if rec.Updated, err = parseTime(updated); err != nil {
			return nil, fmt.Errorf("message %q: updated: %w", m.ID, err)
		}
		if hasPayload && m.Payload == nil {
			m.Payload = []byte{}
		}
		if meta != nil {
			if err := json.Unmarshal(meta, &m.Meta); err != nil {
				return nil, fmt.Errorf("message %q: meta: %w", m.ID, err)
			}
		}
		if ctxJSON != nil {
			if err := jsonenc.Unmarshal(ctxJSON, &m.Context); err != nil {
				return nil, fmt.Errorf("message %q: context: %w", m.ID, err)
			}
		}
		if trace != nil {
			m.Trace = append(json.RawMessage{}, trace...)
		}
		rec.State = store.State(state)
		rec.Message = &m
		out = append(out, &rec)
	}
	return out, rows.Err()
}

// scanTransition reads one history row, as selected by sqlHistColumns
// after the columns given in dest.
func scanTransition(rows *sql.Rows, dest ...any) (store.Transition, error) {
	var t store.Transition
	var state, at, outcome string
	if err := rows.Scan(append(dest, &state, &at, &t.Err, &outcome, &t.Reason)...); err != nil {
		return t, err
	}
	t.State = store.State(state)
	var err error
	if t.At, err = parseTime(at); err != nil {
		return t, fmt.Errorf("history time: %w", err)
	}
	if t.Outcome, err = parseOutcome(outcome); err != nil {
		return t, fmt.Errorf("history outcome: %w", err)
	}
	return t, nil
}

// where builds the WHERE clause (with a leading space) and arguments for q.
// none reports that q cannot match anything.
func where(q *store.Query) (clause string, args []any, none bool) {
	var conds []string
	if len(q.States) > 0 {
		conds = append(conds, "state IN (?"+strings.Repeat(", ?", len(q.States)-1)+")")
		for _, st := range q.States {
			args = append(args, string(st))
		}
	}
	if !q.Since.IsZero() {
		switch y := q.Since.UTC().Year(); {
		case y > 9999:
			return "", nil, true
		case y >= 0:
			conds = append(conds, "time >= ?")
			args = append(args, formatTime(q.Since))
		}
	}
	if !q.Until.IsZero() {
		switch y := q.Until.UTC().Year(); {
		case y < 0:
			return "", nil, true
		case y <= 9999:
			conds = append(conds, "time < ?")
			args = append(args, formatTime(q.Until))
		}
	}
	if q.IDContains != "" {
		conds = append(conds, "instr(id, ?) > 0")
		args = append(args, q.IDContains)
	}
	for k, v := range q.Meta {
		conds = append(conds, "json_extract(meta, ?) = ?")
		args = append(args, metaPath(k), v)
	}
	if len(conds) == 0 {
		return "", args, false
	}
	return " WHERE " + strings.Join(conds, " AND "), args, false
}

// metaPath returns the JSON path of the meta key k: $."k", with '"' and
// '\' escaped.
func metaPath(k string) string {
	var b strings.Builder
	b.WriteString(`$."`)
	for _, r := range k {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// stmt returns a prepared read statement for query, prepared once and
// kept for later queries with the same text, or nil when too many distinct
// texts are kept already. It must be called outside any transaction: an
// in-memory database has a single connection.
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.cache[query]; ok || len(s.cache) >= maxCachedStmts {
		return st, nil
	}
	st, err := s.r.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.cache[query] = st
	return st, nil
}

// query runs query in tx, through st when it is not nil.
func query(ctx context.Context, tx *sql.Tx, st *sql.Stmt, query string, args ...any) (*sql.Rows, error) {
	if st == nil {
		return tx.QueryContext(ctx, query, args...)
	}
	return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
}

// maxCachedStmts caps the number of distinct search statements kept
// prepared.
const maxCachedStmts = 128

// Search implements store.Store.
func (s *Store) Search(ctx context.Context, q store.Query) ([]*store.Record, error) {
	ctx = storeutil.OrBackground(ctx)
	if err := q.Validate(); err != nil {
		return nil, s.fail("search", "", "", err)
	}
	if !s.life.Enter() {
		return nil, s.fail("search", "", "", store.ErrClosed)
	}
	defer s.life.Exit()
	cond, args, none := where(&q)
	if none {
		return []*store.Record{}, nil
	}
	order := " ORDER BY time, id"
	if q.Desc {
		order = " ORDER BY time DESC, id DESC"
	}
	limit := -1
	if q.Limit > 0 {
		limit = q.Limit
	}
	args = append(args, limit, q.Offset)
	sel := "SELECT " + sqlColumns + " FROM messages" + cond + order + " LIMIT ? OFFSET ?"
	hist := "SELECT message_id, " + sqlHistColumns + " FROM history WHERE message_id IN (SELECT id FROM messages" +
		cond + order + " LIMIT ? OFFSET ?) ORDER BY message_id, seq"
	selStmt, err := s.stmt(ctx, sel)
	if err != nil {
		return nil, s.fail("search", "", "", err)
	}
	histStmt, err := s.stmt(ctx, hist)
	if err != nil {
		return nil, s.fail("search", "", "", err)
	}
	var recs []*store.Record
	err = s.read(ctx, func(tx *sql.Tx) error {
		var err error
		if recs, err = scanRecords(query(ctx, tx, selStmt, sel, args...)); err != nil || len(recs) == 0 {
			return err
		}
		byID := make(map[string]*store.Record, len(recs))
		for _, r := range recs {
			byID[r.Message.ID] = r
		}
		rows, err := query(ctx, tx, histStmt, hist, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			t, err := scanTransition(rows, &id)
			if err != nil {
				return fmt.Errorf("message %q: %w", id, err)
			}
			if r := byID[id]; r != nil {
				r.History = append(r.History, t)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.fail("search", "", "", err)
	}
	if recs == nil {
		recs = []*store.Record{}
	}
	return recs, nil
}

// Count implements store.Store.
func (s *Store) Count(ctx context.Context, q store.Query) (int, error) {
	ctx = storeutil.OrBackground(ctx)
	if err := q.Validate(); err != nil {
		return 0, s.fail("count", "", "", err)
	}
	if !s.life.Enter() {
		return 0, s.fail("count", "", "", store.ErrClosed)
	}
	defer s.life.Exit()
	cond, args, none := where(&q)
	if none {
		return 0, nil
	}
	count := "SELECT count(*) FROM messages" + cond
	st, err := s.stmt(ctx, count)
	if err != nil {
		return 0, s.fail("count", "", "", err)
	}
	var n int
	err = s.read(ctx, func(tx *sql.Tx) error {
		rows, err := query(ctx, tx, st, count, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		if rows.Next() {
			if err := rows.Scan(&n); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return 0, s.fail("count", "", "", err)
	}
	return n, nil
}

// probeSize is how many bytes a probe writes: a page or so, as a small
// record does.
const probeSize = 4096

// Probe implements [store.Prober]: as a write of its own (in the batch of
// the writes queued beside it) it inserts a probe row into the messages
// table (an ID no message is given) and deletes it, and the batch
// commits, which writes the database's log as any write does. A read-only database file or folder, or a full disk, fails it;
// readers never see the row.
func (s *Store) Probe(ctx context.Context) error {
	ctx = storeutil.OrBackground(ctx)
	if err := ctx.Err(); err != nil {
		return s.fail("probe", "", "", err)
	}
	if !s.life.Enter() {
		return s.fail("probe", "", "", store.ErrClosed)
	}
	defer s.life.Exit()
	id := fmt.Sprintf("\x00probe-%d", time.Now().UnixNano())
	err := s.write(ctx, func(tx *sql.Tx) error {
		ctx := context.Background()
		if _, err := tx.ExecContext(ctx, `INSERT INTO messages (id, time, content_type, payload, state, err, attempts, updated)
			VALUES (?, '', '', randomblob(?), 'pending', '', 0, '')`, id, probeSize); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return s.fail("probe", "", "", fmt.Errorf("%s: %w", s.path, err))
	}
	return nil
}

// Close implements store.Store. It waits for running operations to
// finish (a write, for its batch to commit).
func (s *Store) Close() error {
	if !s.life.Close() {
		return nil
	}
	if err := s.closeAll(); err != nil {
		return s.fail("close", "", "", err)
	}
	return nil
}

// closeAll closes the statements and the connections.
func (s *Store) closeAll() error {
	var errs []error
	s.mu.Lock()
	for _, st := range s.cache {
		errs = append(errs, st.Close())
	}
	s.cache = nil
	s.mu.Unlock()
	for _, st := range append([]*sql.Stmt{s.insertMsg, s.insertFirst, s.insertBegun, s.update, s.insertHist, s.updateOutcome, s.insertHistOutcome, s.getMsg, s.getHist}, s.jr.statements()...) {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.r != nil && s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}
