package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/internal/storeutil"
)

var _ store.Journal = (*Store)(nil)

// journalSchema returns the statements that create the journal of
// durable runs (store.Journal): the entries of each message, and the
// wait of each message parked in state waiting.
func (s *Store) journalSchema() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + s.journal + ` (
			message_id TEXT COLLATE "C" NOT NULL REFERENCES ` + s.msgs + ` (id) ON DELETE CASCADE,
			seq        INTEGER NOT NULL,
			entry      TEXT NOT NULL, -- store.EncodeJournalEntry
			PRIMARY KEY (message_id, seq)
		)`,
		`CREATE TABLE IF NOT EXISTS ` + s.waits + ` (
			message_id TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES ` + s.msgs + ` (id) ON DELETE CASCADE,
			path       TEXT NOT NULL,
			since      TEXT COLLATE "C" NOT NULL,
			due        TEXT COLLATE "C", -- NULL: no timer
			wait       TEXT NOT NULL     -- store.Wait as JSON
		)`,
		`CREATE INDEX IF NOT EXISTS ` + pgx.Identifier{s.table + "_waits_due"}.Sanitize() + ` ON ` + s.waits + ` (due, message_id) WHERE due IS NOT NULL`,
	}
}

// journalWrite runs f in a transaction, after locking the row of message
// id (so that writes of one message from any process take their turns):
// ErrNotFound if it is not stored.
func (s *Store) journalWrite(ctx context.Context, op, id string, to store.State, f func(tx pgx.Tx) error) error {
	ctx = storeutil.OrBackground(ctx)
	if err := ctx.Err(); err != nil {
		return s.fail(op, id, to, err)
	}
	if !s.life.Enter() {
		return s.fail(op, id, to, store.ErrClosed)
	}
	defer s.life.Exit()
	if checkText(id) != nil {
		return s.fail(op, id, to, store.ErrNotFound)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM `+s.msgs+` WHERE id = $1 FOR UPDATE`, id).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return store.ErrNotFound
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

// appendEntries inserts encoded entries in tx, numbered after the last.
func (s *Store) appendEntries(ctx context.Context, tx pgx.Tx, id string, enc []string) error {
	if len(enc) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+s.journal+` (message_id, seq, entry)
		SELECT $1, (SELECT coalesce(max(seq), 0) FROM `+s.journal+` WHERE message_id = $1) + e.n, e.entry
		FROM unnest($2::text[]) WITH ORDINALITY AS e (entry, n)`, id, enc)
	return err
}

func encodeEntries(entries []store.JournalEntry, at time.Time) ([]string, error) {
	out := make([]string, len(entries))
	for i, e := range entries {
		b, err := store.EncodeJournalEntry(e, at)
		if err != nil {
			return nil, err
		}
		if err := checkText(string(b)); err != nil {
			return nil, err
		}
		out[i] = string(b)
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
	if checkText(id) != nil {
		return nil, s.fail("journal", id, "", store.ErrNotFound)
	}
	var exists bool
	var entries []string
	// One statement: one snapshot.
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+s.msgs+` WHERE id = $1),
		ARRAY(SELECT entry FROM `+s.journal+` WHERE message_id = $1 ORDER BY seq)`, id).Scan(&exists, &entries)
	if err != nil {
		return nil, s.fail("journal", id, "", err)
	}
	if !exists {
		return nil, s.fail("journal", id, "", store.ErrNotFound)
	}
	out := make([]store.JournalEntry, 0, len(entries))
	for _, b := range entries {
		e, err := store.DecodeJournalEntry([]byte(b))
		if err != nil {
			return nil, s.fail("journal", id, "", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// AppendJournal implements [store.Journal]: the entries are inserted in
// one transaction.
func (s *Store) AppendJournal(ctx context.Context, id string, entries ...store.JournalEntry) error {
	enc, err := encodeEntries(entries, storeutil.Now())
	if err != nil {
		return s.fail("journal", id, "", err)
	}
	return s.journalWrite(ctx, "journal", id, "", func(tx pgx.Tx) error {
		return s.appendEntries(ctx, tx, id, enc)
	})
}

// ClearJournal implements [store.Journal].
func (s *Store) ClearJournal(ctx context.Context, id string) error {
	return s.journalWrite(ctx, "journal", id, "", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM `+s.journal+` WHERE message_id = $1`, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM `+s.waits+` WHERE message_id = $1`, id)
		return err
	})
}

// transitionTx is Transition inside tx.
func (s *Store) transitionTx(ctx context.Context, tx pgx.Tx, id string, to store.State, nu store.NormalizedUpdate, at time.Time) error {
	attempt := 0
	if to == store.Processing {
		attempt = 1
	}
	_, err := tx.Exec(ctx, s.sqlTransition, id, string(to), nu.Err, outcomeText(nu.Outcome), nu.Reason,
		attempt, formatTime(at), textOrNil(nu.Context), textOrNil(nu.Trace))
	return err
}

// Park implements [store.Journal]: the wait, the entries and the
// transition to waiting are one transaction.
func (s *Store) Park(ctx context.Context, id string, w store.Wait, u store.Update, entries ...store.JournalEntry) error {
	now := storeutil.Now()
	enc, err := encodeEntries(entries, now)
	if err != nil {
		return s.fail("park", id, store.Waiting, err)
	}
	nu, err := store.NormalizeUpdate(store.Waiting, u)
	if err == nil {
		err = checkText(nu.Err, nu.Reason)
	}
	if err != nil {
		return s.fail("park", id, store.Waiting, err)
	}
	if _, err := store.CheckWait(id, w, now); err != nil {
		return s.fail("park", id, store.Waiting, err)
	}
	return s.journalWrite(ctx, "park", id, store.Waiting, func(tx pgx.Tx) error {
		since := now
		var path, was string
		err := tx.QueryRow(ctx, `SELECT path, since FROM `+s.waits+` WHERE message_id = $1`, id).Scan(&path, &was)
		switch {
		case err == nil && path == w.Path:
			if since, err = parseTime(was); err != nil {
				return fmt.Errorf("wait since: %w", err)
			}
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
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
		if err := checkText(string(data)); err != nil {
			return err
		}
		var due any
		if !cw.Due.IsZero() {
			due = formatTime(cw.Due)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+s.waits+` (message_id, path, since, due, wait) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (message_id) DO UPDATE SET path = excluded.path, since = excluded.since, due = excluded.due, wait = excluded.wait`,
			id, cw.Path, formatTime(cw.Since), due, string(data)); err != nil {
			return err
		}
		if err := s.appendEntries(ctx, tx, id, enc); err != nil {
			return err
		}
		return s.transitionTx(ctx, tx, id, store.Waiting, nu, now)
	})
}

// Wake implements [store.Journal]: the entry, the end of the wait and the
// transition to processing are one transaction. Of two processes waking
// the same wait, one wakes it and the other is told ErrNotWaiting.
func (s *Store) Wake(ctx context.Context, id, path string, e store.JournalEntry) error {
	now := storeutil.Now()
	enc, err := encodeEntries([]store.JournalEntry{e}, now)
	if err != nil {
		return s.fail("wake", id, store.Processing, err)
	}
	return s.journalWrite(ctx, "wake", id, store.Processing, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM `+s.waits+` WHERE message_id = $1 AND path = $2`, id, path)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotWaiting
		}
		if err := s.appendEntries(ctx, tx, id, enc); err != nil {
			return err
		}
		return s.transitionTx(ctx, tx, id, store.Processing, store.NormalizedUpdate{}, now)
	})
}

func decodeWait(b string) (*store.Wait, error) {
	var w store.Wait
	if err := json.Unmarshal([]byte(b), &w); err != nil {
		return nil, fmt.Errorf("wait: %w", err)
	}
	return &w, nil
}

// Wait implements [store.Journal].
func (s *Store) Wait(ctx context.Context, id string) (*store.Wait, error) {
	ctx = storeutil.OrBackground(ctx)
	if !s.life.Enter() {
		return nil, s.fail("wait", id, "", store.ErrClosed)
	}
	defer s.life.Exit()
	if checkText(id) != nil {
		return nil, s.fail("wait", id, "", store.ErrNotWaiting)
	}
	var b string
	err := s.pool.QueryRow(ctx, `SELECT wait FROM `+s.waits+` WHERE message_id = $1`, id).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, s.fail("wait", id, "", store.ErrNotWaiting)
	}
	if err != nil {
		return nil, s.fail("wait", id, "", err)
	}
	w, err := decodeWait(b)
	if err != nil {
		return nil, s.fail("wait", id, "", err)
	}
	return w, nil
}

// DueWaits implements [store.Journal], through an index on the due time.
func (s *Store) DueWaits(ctx context.Context, t time.Time, limit int) ([]*store.Wait, error) {
	ctx = storeutil.OrBackground(ctx)
	if !s.life.Enter() {
		return nil, s.fail("wait", "", "", store.ErrClosed)
	}
	defer s.life.Exit()
	q := `SELECT wait FROM ` + s.waits + ` WHERE due IS NOT NULL AND due <= $1 ORDER BY due, message_id`
	args := []any{formatTime(t)}
	if limit > 0 {
		q += ` LIMIT $2`
		args = append(args, limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, s.fail("wait", "", "", err)
	}
	defer rows.Close()
	var out []*store.Wait
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, s.fail("wait", "", "", err)
		}
		w, err := decodeWait(b)
		if err != nil {
			return nil, s.fail("wait", "", "", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("wait", "", "", err)
	}
	return out, nil
}

// NextDue implements [store.Journal], through an index on the due time.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	ctx = storeutil.OrBackground(ctx)
	if !s.life.Enter() {
		return time.Time{}, false, s.fail("wait", "", "", store.ErrClosed)
	}
	defer s.life.Exit()
	var due *string
	if err := s.pool.QueryRow(ctx, `SELECT min(due) FROM `+s.waits+` WHERE due IS NOT NULL`).Scan(&due); err != nil {
		return time.Time{}, false, s.fail("wait", "", "", err)
	}
	if due == nil {
		return time.Time{}, false, nil
	}
	t, err := parseTime(*due)
	if err != nil {
		return time.Time{}, false, s.fail("wait", "", "", err)
	}
	return t, true, nil
}
