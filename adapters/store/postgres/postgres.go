// Package postgres is a message store (a [store.Store]) in a PostgreSQL
// database, through github.com/jackc/pgx/v5: the store for many workers,
// on one machine or many, that share one message store, its search and
// its replay. Each write is one statement (one transaction, one round
// trip) whose row locks make concurrent writers from any number of
// processes safe: two workers settling the same message are serialized by
// the lock on its row, and its history gets every transition, numbered
// without gaps.
//
// Importing this package links pgx; a program that imports only package
// store links none.
package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	flowerrors "github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/internal/jsonenc"
	"github.com/svcflow/svcflow/internal/storeutil"
)

// Store is a [store.Store] in PostgreSQL tables. A write that returned
// is committed by the server, as durable as the server's settings make a
// commit (synchronous_commit on, the default, survives a crash and a
// power loss of the server). Many Stores, in many processes, may share
// the same tables.
type Store struct {
	table string // the prefix of the table names, as given
	life  storeutil.Life
	pool  *pgxpool.Pool

	sqlPut, sqlBegin, sqlTransition, sqlGet string
	msgs, hist, journal, waits              string // quoted table names
}

var _ store.Store = (*Store)(nil)
var _ store.Prober = (*Store)(nil)

// DefaultTable is the prefix of the table names of a Store opened with
// no Table: its tables are svcflow_messages and svcflow_history.
const DefaultTable = "svcflow"

// Options tune a Store.
type Options struct {
	// Table is the prefix of the store's table names: TABLE_messages and
	// TABLE_history (empty: DefaultTable). Stores with different prefixes
	// share a database without seeing each other's messages; the
	// component uses the channel's name.
	Table string
	// MaxConns caps the connections of the store's pool (0: pgx's
	// default, the larger of 4 and the number of CPUs).
	MaxConns int32
}

// timeLayout formats times with a fixed width, so that they sort as text
// (under the "C" collation) and keep their nanoseconds, which a
// PostgreSQL timestamp (microseconds) would not.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// Open connects to the PostgreSQL server at url (a URL or a keyword/value
// connection string, as pgx reads it: postgres://user:password@host:5432/db)
// and creates the store's tables if they are missing. ctx bounds the
// connection and the creation.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	ctx = storeutil.OrBackground(ctx)
	fail := func(err error) error {
		return &store.OpError{Store: "postgres", Op: "open", Err: fmt.Errorf("%s: %w", redact(url), err)}
	}
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	if strings.ContainsRune(opts.Table, 0) {
		return nil, fail(fmt.Errorf("%w: table name holds a NUL", store.ErrInvalid))
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fail(fmt.Errorf("%w: %w", store.ErrInvalid, err))
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail(err)
	}
	s := &Store{table: opts.Table, pool: pool}
	s.msgs = pgx.Identifier{opts.Table + "_messages"}.Sanitize()
	s.hist = pgx.Identifier{opts.Table + "_history"}.Sanitize()
	s.journal = pgx.Identifier{opts.Table + "_journal"}.Sanitize()
	s.waits = pgx.Identifier{opts.Table + "_waits"}.Sanitize()
	s.prepareSQL()
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fail(err)
	}
	return s, nil
}

// redact hides the password of a connection URL in error messages.
func redact(url string) string {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil || cfg.Password == "" {
		return url
	}
	return strings.ReplaceAll(url, cfg.Password, "xxxxx")
}

// migrate creates the tables and indexes, once, whatever the number of
// processes opening the store at the same time (under an advisory lock).
func (s *Store) migrate(ctx context.Context) error {
	stmts := []string{
		`SELECT pg_advisory_xact_lock(hashtext('svcflow store ' || $1))`,
		`CREATE TABLE IF NOT EXISTS ` + s.msgs + ` (
			id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
			time         TEXT COLLATE "C" NOT NULL, -- message time, UTC, fixed width: sorts as text
			content_type TEXT NOT NULL,
			payload      BYTEA,  -- NULL when the payload is nil
			meta         JSONB,  -- NULL when nil
			context      TEXT,   -- JSON object as stored; NULL when nil
			trace        TEXT,   -- JSON; NULL when nil
			state        TEXT NOT NULL,
			err          TEXT NOT NULL,
			outcome      TEXT NOT NULL, -- an errors.Kind by name; '' when none
			reason       TEXT NOT NULL,
			attempts     INTEGER NOT NULL,
			updated      TEXT NOT NULL,
			seq          INTEGER NOT NULL -- history rows: the number of the latest
		)`,
		`CREATE INDEX IF NOT EXISTS ` + pgx.Identifier{s.table + "_messages_time"}.Sanitize() + ` ON ` + s.msgs + ` (time, id)`,
		`CREATE INDEX IF NOT EXISTS ` + pgx.Identifier{s.table + "_messages_state_time"}.Sanitize() + ` ON ` + s.msgs + ` (state, time, id)`,
		`CREATE TABLE IF NOT EXISTS ` + s.hist + ` (
			message_id TEXT COLLATE "C" NOT NULL REFERENCES ` + s.msgs + ` (id) ON DELETE CASCADE,
			seq        INTEGER NOT NULL,
			state      TEXT NOT NULL,
			at         TEXT NOT NULL,
			err        TEXT NOT NULL,
			outcome    TEXT NOT NULL,
			reason     TEXT NOT NULL,
			PRIMARY KEY (message_id, seq)
		)`,
	}
	stmts = append(stmts, s.journalSchema()...)
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for i, q := range stmts {
			var args []any
			if i == 0 {
				args = []any{s.table}
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return fmt.Errorf("create tables: %w", err)
			}
		}
		return nil
	})
}

const msgColumns = `id, time, content_type, payload, meta, context, trace, state, err, outcome, reason, attempts, updated`

// prepareSQL builds the statements on the store's tables.
func (s *Store) prepareSQL() {
	// Put and Begin: the message, then its first history rows, in one
	// statement; no row when the ID is stored already.
	insert := `WITH m AS (
		INSERT INTO ` + s.msgs + ` (` + msgColumns + `, seq)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '', '', '', $9, $10, $9 + 1)
		ON CONFLICT (id) DO NOTHING RETURNING id)
	INSERT INTO ` + s.hist + ` (message_id, seq, state, at, err, outcome, reason)
	SELECT m.id, f.seq, f.state, $10, '', '', '' FROM m, `
	s.sqlPut = insert + `(VALUES (1, 'pending')) AS f (seq, state)`
	s.sqlBegin = insert + `(VALUES (1, 'pending'), (2, 'processing')) AS f (seq, state)`
	// Transition: the update locks the message's row, so concurrent
	// transitions of one message (from any process) take their turns and
	// number their history rows one after the other.
	s.sqlTransition = `WITH u AS (
		UPDATE ` + s.msgs + ` SET state = $2, err = $3, outcome = $4, reason = $5,
			attempts = attempts + $6, updated = $7,
			context = coalesce($8, context), trace = coalesce($9, trace), seq = seq + 1
		WHERE id = $1 RETURNING id, seq)
	INSERT INTO ` + s.hist + ` (message_id, seq, state, at, err, outcome, reason)
	SELECT u.id, u.seq, $2, $7, $3, $4, $5 FROM u`
	s.sqlGet = `SELECT ` + s.recordColumns() + ` FROM ` + s.msgs + ` m WHERE id = $1`
}

// recordColumns selects a record with its history (as arrays, in one
// statement, so from one snapshot) from a row of the messages table
// named m.
func (s *Store) recordColumns() string {
	var b strings.Builder
	for _, c := range strings.Split(msgColumns, ", ") {
		b.WriteString("m.")
		b.WriteString(c)
		b.WriteString(", ")
	}
	for i, c := range []string{"state", "at", "err", "outcome", "reason"} {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "ARRAY(SELECT h.%s FROM %s h WHERE h.message_id = m.id ORDER BY h.seq)", c, s.hist)
	}
	return b.String()
}

func (s *Store) fail(op, id string, to store.State, err error) error {
	return &store.OpError{Store: "postgres", Op: op, ID: id, To: to, Err: err}
}

// outcomeText is how the outcome column holds k: its name, or the empty
// text for the zero Kind (no outcome given).
func outcomeText(k flowerrors.Kind) string {
	if k == 0 {
		return ""
	}
	return k.String()
}

func parseOutcome(s string) (flowerrors.Kind, error) {
	if s == "" {
		return 0, nil
	}
	return flowerrors.ParseKind(s)
}

// textOrNil returns b as a string, or nil (SQL NULL) when b is nil.
func textOrNil(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, m *message.Message) error {
	return s.put(ctx, m, "put")
}

// Begin implements store.Store: the message is stored in Processing with
// both transitions, in one statement.
func (s *Store) Begin(ctx context.Context, m *message.Message) error {
	return s.put(ctx, m, "begin")
}

func (s *Store) put(ctx context.Context, m *message.Message, op string) error {
	ctx = storeutil.OrBackground(ctx)
	var id string
	if m != nil {
		id = m.ID
	}
	n, err := store.Normalize(m)
	if err == nil {
		err = checkText(id, n.Message.ContentType)
	}
	if err != nil {
		return s.fail(op, id, "", err)
	}
	var meta []byte
	if n.Message.Meta != nil {
		for k, v := range n.Message.Meta {
			if err := checkText(k, v); err != nil {
				return s.fail(op, id, "", fmt.Errorf("meta: %w", err))
			}
		}
		if meta, err = json.Marshal(n.Message.Meta); err != nil {
			return s.fail(op, id, "", fmt.Errorf("%w: encode meta: %w", store.ErrInvalid, err))
		}
	}
	if !s.life.Enter() {
		return s.fail(op, id, "", store.ErrClosed)
	}
	defer s.life.Exit()
	q, state, attempts := s.sqlPut, store.Pending, 0
	if op == "begin" {
		q, state, attempts = s.sqlBegin, store.Processing, 1
	}
	var payload any
	if n.Message.Payload != nil {
		payload = n.Message.Payload
	}
	tag, err := s.pool.Exec(ctx, q, id, formatTime(n.Message.Time), n.Message.ContentType, payload,
		textOrNil(meta), textOrNil(n.Context), textOrNil(n.Message.Trace), string(state), attempts,
		formatTime(storeutil.Now()))
	if err != nil {
		return s.fail(op, id, "", err)
	}
	if tag.RowsAffected() == 0 {
		return s.fail(op, id, "", store.ErrExists)
	}
	return nil
}

// checkText reports texts PostgreSQL cannot hold: a NUL character.
func checkText(texts ...string) error {
	for _, t := range texts {
		if strings.IndexByte(t, 0) >= 0 {
			return fmt.Errorf("%w: text with a NUL character: PostgreSQL cannot store it", store.ErrInvalid)
		}
	}
	return nil
}

// Transition implements store.Store.
func (s *Store) Transition(ctx context.Context, id string, to store.State, u store.Update) error {
	ctx = storeutil.OrBackground(ctx)
	nu, err := store.NormalizeUpdate(to, u)
	if err == nil {
		err = checkText(id, nu.Err, nu.Reason)
	}
	if err != nil {
		return s.fail("transition", id, to, err)
	}
	if !s.life.Enter() {
		return s.fail("transition", id, to, store.ErrClosed)
	}
	defer s.life.Exit()
	attempt := 0
	if to == store.Processing {
		attempt = 1
	}
	tag, err := s.pool.Exec(ctx, s.sqlTransition, id, string(to), nu.Err, outcomeText(nu.Outcome), nu.Reason,
		attempt, formatTime(storeutil.Now()), textOrNil(nu.Context), textOrNil(nu.Trace))
	if err != nil {
		return s.fail("transition", id, to, err)
	}
	if tag.RowsAffected() == 0 {
		return s.fail("transition", id, to, store.ErrNotFound)
	}
	return nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, id string) (*store.Record, error) {
	ctx = storeutil.OrBackground(ctx)
	if !s.life.Enter() {
		return nil, s.fail("get", id, "", store.ErrClosed)
	}
	defer s.life.Exit()
	if strings.IndexByte(id, 0) >= 0 {
		return nil, s.fail("get", id, "", store.ErrNotFound) // never stored
	}
	rows, err := s.pool.Query(ctx, s.sqlGet, id)
	if err != nil {
		return nil, s.fail("get", id, "", err)
	}
	recs, err := scanRecords(rows)
	if err != nil {
		return nil, s.fail("get", id, "", err)
	}
	if len(recs) == 0 {
		return nil, s.fail("get", id, "", store.ErrNotFound)
	}
	return recs[0], nil
}

// scanRecords reads the records selected by recordColumns and closes rows.
func scanRecords(rows pgx.Rows) ([]*store.Record, error) {
	defer rows.Close()
	var out []*store.Record
	for rows.Next() {
		var (
			m                                    message.Message
			tm, state, outcome, updated          string
			meta, ctxJSON, trace                 *string
			hState, hAt, hErr, hOutcome, hReason []string
			rec                                  store.Record
			attempts                             int32
		)
		if err := rows.Scan(&m.ID, &tm, &m.ContentType, &m.Payload, &meta, &ctxJSON, &trace, &state,
			&rec.Err, &outcome, &rec.Reason, &attempts, &updated,
			&hState, &hAt, &hErr, &hOutcome, &hReason); err != nil {
			return nil, err
		}
		var err error
		rec.Attempts = int(attempts)
		if rec.Outcome, err = parseOutcome(outcome); err != nil {
			return nil, fmt.Errorf("message %q: outcome: %w", m.ID, err)
		}
		if m.Time, err = parseTime(tm); err != nil {
			return nil, fmt.Errorf("message %q: time: %w", m.ID, err)
		}
		if rec.Updated, err = parseTime(updated); err != nil {
			return nil, fmt.Errorf("message %q: updated: %w", m.ID, err)
		}
		if meta != nil {
			if err := json.Unmarshal([]byte(*meta), &m.Meta); err != nil {
				return nil, fmt.Errorf("message %q: meta: %w", m.ID, err)
			}
		}
		if ctxJSON != nil {
			if err := jsonenc.Unmarshal([]byte(*ctxJSON), &m.Context); err != nil {
				return nil, fmt.Errorf("message %q: context: %w", m.ID, err)
			}
		}
		if trace != nil {
			m.Trace = json.RawMessage(*trace)
		}
		rec.State = store.State(state)
		rec.Message = &m
		rec.History = make([]store.Transition, len(hState))
		for i := range hState {
			t := store.Transition{State: store.State(hState[i]), Err: hErr[i], Reason: hReason[i]}
			if t.At, err = parseTime(hAt[i]); err != nil {
				return nil, fmt.Errorf("message %q: history time: %w", m.ID, err)
			}
			if t.Outcome, err = parseOutcome(hOutcome[i]); err != nil {
				return nil, fmt.Errorf("message %q: history outcome: %w", m.ID, err)
			}
			rec.History[i] = t
		}
		out = append(out, &rec)
	}
	return out, rows.Err()
}

// where builds the WHERE clause (with a leading space) and arguments for
// q. none reports that q cannot match anything.
func where(q *store.Query) (clause string, args []any, none bool) {
	var conds []string
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if len(q.States) > 0 {
		states := make([]string, len(q.States))
		for i, st := range q.States {
			states[i] = string(st)
		}
		conds = append(conds, "state = ANY("+arg(states)+")")
	}
	if !q.Since.IsZero() {
		switch y := q.Since.UTC().Year(); {
		case y > 9999:
			return "", nil, true
		case y >= 0:
			conds = append(conds, "time >= "+arg(formatTime(q.Since)))
		}
	}
	if !q.Until.IsZero() {
		switch y := q.Until.UTC().Year(); {
		case y < 0:
			return "", nil, true
		case y <= 9999:
			conds = append(conds, "time < "+arg(formatTime(q.Until)))
		}
	}
	if q.IDContains != "" {
		if checkText(q.IDContains) != nil {
			return "", nil, true // never stored
		}
		conds = append(conds, "strpos(id, "+arg(q.IDContains)+") > 0")
	}
	for k, v := range q.Meta {
		if checkText(k, v) != nil {
			return "", nil, true // never stored
		}
		conds = append(conds, "meta ->> "+arg(k)+" = "+arg(v))
	}
	if len(conds) == 0 {
		return "", args, false
	}
	return " WHERE " + strings.Join(conds, " AND "), args, false
}

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
	sel := "SELECT " + s.recordColumns() + " FROM " + s.msgs + " m" + cond + order
	if q.Limit > 0 {
		args = append(args, q.Limit)
		sel += fmt.Sprintf(" LIMIT $%d", len(args))
	}
	if q.Offset > 0 {
		args = append(args, q.Offset)
		sel += fmt.Sprintf(" OFFSET $%d", len(args))
	}
	rows, err := s.pool.Query(ctx, sel, args...)
	if err != nil {
		return nil, s.fail("search", "", "", err)
	}
	recs, err := scanRecords(rows)
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
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM "+s.msgs+cond, args...).Scan(&n); err != nil {
		return 0, s.fail("count", "", "", err)
	}
	return int(n), nil
}

// Probe implements [store.Prober]: in one transaction it inserts a probe
// row into the messages table (an ID no message is given: it starts with
// a character IDs cannot hold here) and deletes it, and commits. A
// server that refuses writes (read-only, a full disk, no connection)
// fails it; readers never see the row.
func (s *Store) Probe(ctx context.Context) error {
	ctx = storeutil.OrBackground(ctx)
	if err := ctx.Err(); err != nil {
		return s.fail("probe", "", "", err)
	}
	if !s.life.Enter() {
		return s.fail("probe", "", "", store.ErrClosed)
	}
	defer s.life.Exit()
	id := fmt.Sprintf("\x01probe-%d", time.Now().UnixNano())
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO `+s.msgs+` (`+msgColumns+`, seq)
			VALUES ($1, '', '', NULL, NULL, NULL, NULL, 'pending', '', '', '', 0, '', 0)`, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM `+s.msgs+` WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return s.fail("probe", "", "", err)
	}
	return nil
}

// Close implements store.Store. It waits for running operations to
// finish and closes the connections.
func (s *Store) Close() error {
	if !s.life.Close() {
		return nil
	}
	s.pool.Close()
	return nil
}

// checkURL reports a connection string that pgx cannot read, without
// connecting: the check of a configuration.
func checkURL(url string) error {
	if _, err := pgconn.ParseConfig(url); err != nil {
		return fmt.Errorf("url %s: %w", redact(url), err)
	}
	return nil
}
