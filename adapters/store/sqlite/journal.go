package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/internal/storeutil"
)

var _ store.Journal = (*Store)(nil)

// journalSchema holds the journal of durable runs (store.Journal): the
// entries of each message, and the wait of each message parked in state
// waiting. It is created when missing, so databases of any schema
// version get it without a version of their own.
var journalSchema = []string{
	`CREATE TABLE IF NOT EXISTS journal (
		message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
		seq        INTEGER NOT NULL,
		entry      TEXT NOT NULL, -- store.EncodeJournalEntry
		PRIMARY KEY (message_id, seq)
	) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS waits (
		message_id TEXT NOT NULL PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
		path       TEXT NOT NULL,
		since      TEXT NOT NULL,
		due        TEXT,          -- NULL: no timer
		wait       TEXT NOT NULL  -- store.Wait as JSON
	)`,
	`CREATE INDEX IF NOT EXISTS waits_due ON waits (due, message_id) WHERE due IS NOT NULL`,
}

const (
	sqlJournalExists = `SELECT 1 FROM messages WHERE id = ?`
	sqlJournalAppend = `INSERT INTO journal (message_id, seq, entry)
		VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM journal WHERE message_id = ?1), ?2)`
	sqlJournalGet = `SELECT entry FROM journal WHERE message_id = ? ORDER BY seq`
)

// journalStmts are the prepared statements of the journal.
type journalStmts struct {
	exists, append *sql.Stmt // on w
	get            *sql.Stmt // on r
}

// initJournal creates the journal's tables when missing and prepares its
// statements.
func (s *Store) initJournal(ctx context.Context) error {
	for _, q := range journalSchema {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("journal schema: %w", err)
		}
	}
	s.jr = &journalStmts{}
	for _, p := range []struct {
		db   *sql.DB
		stmt **sql.Stmt
		sql  string
	}{
		{s.w, &s.jr.exists, sqlJournalExists},
		{s.w, &s.jr.append, sqlJournalAppend},
		{s.r, &s.jr.get, sqlJournalGet},
	} {
		st, err := p.db.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		*p.stmt = st
	}
	return nil
}

// statements returns the journal's statements, for Close.
func (j *journalStmts) statements() []*sql.Stmt {
	if j == nil {
		return nil
	}
	return []*sql.Stmt{j.exists, j.append, j.get}
}

// journalWrite runs f in a write transaction, after checking that message
// id is stored.
func (s *Store) journalWrite(ctx context.Context, op, id string, to store.State, f func(tx *sql.Tx) error) error {
	ctx = storeutil.OrBackground(ctx)
	if err := ctx.Err(); err != nil {
		return s.fail(op, id, to, err)
	}
	if !s.life.Enter() {
		return s.fail(op, id, to, store.ErrClosed)
	}
	defer s.life.Exit()
	err := s.write(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.StmtContext(ctx, s.jr.exists).QueryRowContext(ctx, id).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return unwritten{store.ErrNotFound} // the batch goes on without it
			}
			return err
		}
		return f(tx)
	})
	if err != nil {
		return s.fail(op, id, to, err)
	}
	return nil
}

// appendEntries inserts encoded entries in tx.
func (s *Store) appendEntries(ctx context.Context, tx *sql.Tx, id string, enc [][]byte) error {
	if len(enc) == 0 {
		return nil
	}
	st := tx.StmtContext(ctx, s.jr.append)
	for _, b := range enc {
		if _, err := st.ExecContext(ctx, id, string(b)); err != nil {
			return err
		}
	}
	return nil
}

func encodeEntries(entries []store.JournalEntry, at time.Time) ([][]byte, error) {
	out := make([][]byte, len(entries))
	for i, e := range entries {
		b, err := store.EncodeJournalEntry(e, at)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// Journal implements [store.Journal].
func (s *Store) Journal(ctx context.Context, id string) ([]store.JournalEntry, error) {
	ctx = storeutil.OrBackground(ctx)
	if !s.life.Enter() {
		return nil, s.fail("journal", id, "", store.ErrClosed)
	}
	defer s.life.Exit()
	out := []store.JournalEntry{}
	err := s.read(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, sqlJournalExists, id).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return store.ErrNotFound
			}
			return err
		}
		rows, err := tx.StmtContext(ctx, s.jr.get).QueryContext(ctx, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				return err
			}
			e, err := store.DecodeJournalEntry(b)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.fail("journal", id, "", err)
	}
	return out, nil
}

// AppendJournal implements [store.Journal]: the entries are inserted in
// one write transaction.
func (s *Store) AppendJournal(ctx context.Context, id string, entries ...store.JournalEntry) error {
	enc, err := encodeEntries(entries, storeutil.Now())
	if err != nil {
		return s.fail("journal", id, "", err)
	}
	return s.journalWrite(ctx, "journal", id, "", func(tx *sql.Tx) error {
		return s.appendEntries(ctx, tx, id, enc)
	})
}

// ClearJournal implements [store.Journal].
func (s *Store) ClearJournal(ctx context.Context, id string) error {
	return s.journalWrite(ctx, "journal", id, "", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM journal WHERE message_id = ?`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM waits WHERE message_id = ?`, id)
		return err
	})
}

// transitionTx is Transition inside tx: the message's row and a history
// row. The message is known to be stored.
func (s *Store) transitionTx(ctx context.Context, tx *sql.Tx, id string, to store.State, nu store.NormalizedUpdate, at string) error {
	update, insertHist := s.update, s.insertHist
	attempt := 0
	if to == store.Processing {
		attempt = 1
	}
	args := []any{string(to), nu.Err, attempt, at, nullableText(nu.Context), nullableText(nu.Trace), id}
	histArgs := []any{id, string(to), at, nu.Err}
	if nu.Outcome != 0 || nu.Reason != "" {
		update, insertHist = s.updateOutcome, s.insertHistOutcome
		outcome := outcomeText(nu.Outcome)
		args = append(args[:6], outcome, nu.Reason, id)
		histArgs = append(histArgs, outcome, nu.Reason)
	}
	if _, err := tx.StmtContext(ctx, update).ExecContext(ctx, args...); err != nil {
		return err
	}
	_, err := tx.StmtContext(ctx, insertHist).ExecContext(ctx, histArgs...)
	return err
}

// Park implements [store.Journal]: the wait, the entries and the
// transition to waiting are one write transaction.
func (s *Store) Park(ctx context.Context, id string, w store.Wait, u store.Update, entries ...store.JournalEntry) error {
	now := storeutil.Now()
	enc, err := encodeEntries(entries, now)
	if err != nil {
		return s.fail("park", id, store.Waiting, err)
	}
	nu, err := store.NormalizeUpdate(store.Waiting, u)
	if err != nil {
		return s.fail("park", id, store.Waiting, err)
	}
	if _, err := store.CheckWait(id, w, now); err != nil {
		return s.fail("park", id, store.Waiting, err)
	}
	at := formatTime(now)
	return s.journalWrite(ctx, "park", id, store.Waiting, func(tx *sql.Tx) error {
		since := now
		var path, was string
		err := tx.QueryRowContext(ctx, `SELECT path, since FROM waits WHERE message_id = ?`, id).Scan(&path, &was)
		switch {
		case err == nil && path == w.Path:
			if since, err = parseTime(was); err != nil {
				return fmt.Errorf("wait since: %w", err)
			}
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		cw, err := store.CheckWait(id, w, since)
		if err != nil {
			return err
		}
		data, err := json.Marshal(cw)
		if err != nil {
			return err
		}
		var due any
		if !cw.Due.IsZero() {
			due = formatTime(cw.Due)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO waits (message_id, path, since, due, wait) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (message_id) DO UPDATE SET path = excluded.path, since = excluded.since, due = excluded.due, wait = excluded.wait`,
			id, cw.Path, formatTime(cw.Since), due, string(data)); err != nil {
			return err
		}
		if err := s.appendEntries(ctx, tx, id, enc); err != nil {
			return err
		}
		return s.transitionTx(ctx, tx, id, store.Waiting, nu, at)
	})
}

// Wake implements [store.Journal]: the entry, the end of the wait and the
// transition to processing are one write transaction.
func (s *Store) Wake(ctx context.Context, id, path string, e store.JournalEntry) error {
	now := storeutil.Now()
	enc, err := encodeEntries([]store.JournalEntry{e}, now)
	if err != nil {
		return s.fail("wake", id, store.Processing, err)
	}
	return s.journalWrite(ctx, "wake", id, store.Processing, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM waits WHERE message_id = ? AND path = ?`, id, path)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return unwritten{store.ErrNotWaiting}
		}
		if err := s.appendEntries(ctx, tx, id, enc); err != nil {
			return err
		}
		return s.transitionTx(ctx, tx, id, store.Processing, store.NormalizedUpdate{}, formatTime(now))
	})
}

// waitRead runs a read of waits.
func (s *Store) waitRead(ctx context.Context, id string, f func(tx *sql.Tx) error) error {
	ctx = storeutil.OrBackground(ctx)
	if !s.life.Enter() {
		return s.fail("wait", id, "", store.ErrClosed)
	}
	defer s.life.Exit()
	if err := s.read(ctx, f); err != nil {
		return s.fail("wait", id, "", err)
	}
	return nil
}

func decodeWait(b []byte) (*store.Wait, error) {
	var w store.Wait
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("wait: %w", err)
	}
	return &w, nil
}

// Wait implements [store.Journal].
func (s *Store) Wait(ctx context.Context, id string) (*store.Wait, error) {
	var w *store.Wait
	err := s.waitRead(ctx, id, func(tx *sql.Tx) error {
		var b []byte
		err := tx.QueryRowContext(ctx, `SELECT wait FROM waits WHERE message_id = ?`, id).Scan(&b)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotWaiting
		}
		if err != nil {
			return err
		}
		w, err = decodeWait(b)
		return err
	})
	return w, err
}

// DueWaits implements [store.Journal], through an index on the due time.
func (s *Store) DueWaits(ctx context.Context, t time.Time, limit int) ([]*store.Wait, error) {
	if limit <= 0 {
		limit = -1
	}
	var out []*store.Wait
	err := s.waitRead(ctx, "", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT wait FROM waits WHERE due IS NOT NULL AND due <= ? ORDER BY due, message_id LIMIT ?`,
			formatTime(t), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				return err
			}
			w, err := decodeWait(b)
			if err != nil {
				return err
			}
			out = append(out, w)
		}
		return rows.Err()
	})
	return out, err
}

// NextDue implements [store.Journal], through an index on the due time.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	var due sql.NullString
	err := s.waitRead(ctx, "", func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT min(due) FROM waits WHERE due IS NOT NULL`).Scan(&due)
	})
	if err != nil || !due.Valid {
		return time.Time{}, false, err
	}
	t, err := parseTime(due.String)
	if err != nil {
		return time.Time{}, false, s.fail("wait", "", "", err)
	}
	return t, true, nil
}
