package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/errors"
)

func init() {
	register(&Command{
		Name:    "serve",
		Summary: "run the channels of YAML files: flows behind HTTP, schedules and file drops",
		Usage:   "flowrun serve FILE... [--data DIR] [--admin ADDR] [--drain 30s] [--log text|json] [--log-level LEVEL] [--set path=value]",
		Help: `Starts every channel declared under channels: (a source, a flow, a store)
and serves until SIGINT or SIGTERM, then stops gracefully: sources stop
taking messages, messages in flight finish (within --drain), services
close. Every message is recorded in its channel's store before its flow
runs (SQLite under --data by default), so messages a crash left unfinished
run again at the next start, in the background while new ones are served;
one whose runs crashed the process max_crashes times in a row (default 3)
is set aside in state error ("gave up after N crashed runs") for a replay
by hand. Each store is probed with a write at start (an unwritable one
stops serve with exit 1) and while writes fail (/readyz answers 503).
A nats source without url runs a nats-server in the process, JetStream
stored under --data/nats; with url it connects (an unreachable server
or a stream that differs from its declaration stops serve with exit 1).
The admin address serves /healthz, /readyz and Prometheus /metrics; it
is bound to loopback by default ("off" disables it). Tracing is off
unless OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_TRACES_EXPORTER=otlp asks for
OpenTelemetry spans (exported with OTLP over HTTP). flowrun validate
checks a file exactly as serve builds it.`,
		Example: `flowrun serve examples/intake/intake.yaml
flowrun serve flows.yaml --data /var/lib/flowrun --admin 127.0.0.1:9191`,
		Run: serveCmd,
	})
	register(&Command{
		Name:    "messages",
		Summary: "search a channel's stored messages, show one, replay it, or signal it",
		Usage:   "flowrun messages FILE... --channel NAME [--state STATE] [--since T] [--limit N] [show ID | replay ID [--resume] | signal ID NAME [--set k=v]... [--admin ADDR --token T]]",
		Help: `Reads the store of a channel declared in the files. Without an action it
lists messages (newest first): id, time, state, outcome (ok, stop,
retry-exhausted, failed, panic, ...; "-" when none is recorded: pending,
processing, or stored before outcomes were), attempts, the reason of a
rejection and the last error. "show ID" prints the whole record as JSON
(payload, context, trace, outcome, reason, history; for a channel with
durable: steps also its journal, the steps completed with their writes,
and what it waits for). "replay ID" runs the stored message through the
channel's flow again and records the new outcome in its history; on a
durable channel a finished message (done, rejected, error) runs from the
top, an owed or waiting one resumes after its journaled steps, and
--resume resumes any. "signal ID NAME --set k=v" sends the signal NAME
with values to a message waiting at a wait step of a durable channel:
with --admin ADDR through the admin API of the flowrun serve running it,
else the message resumes here. Stop flowrun serve first when the store
is a SQLite file shared with it only for replay and signal without
--admin.`,
		Example: `flowrun messages examples/intake/intake.yaml --channel intake --state error
flowrun messages examples/intake/intake.yaml --channel intake show 1f0c...
flowrun messages examples/intake/intake.yaml --channel intake replay 1f0c...
flowrun messages approvals.yaml --channel approvals --state waiting
flowrun messages approvals.yaml --channel approvals signal 1f0c... approved --set by=ann --admin 127.0.0.1:9090`,
		Run: messagesCmd,
	})
}

func serveCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["serve"]
	fs := e.FlagSet(c)
	var lf LoadFlags
	lf.Register(fs)
	data := fs.String("data", "data", "folder of the default SQLite stores")
	admin := fs.String("admin", "127.0.0.1:9090", "address of /healthz, /readyz, /metrics (\"off\" to disable)")
	drain := fs.Duration("drain", 30*time.Second, "how long a graceful stop waits for messages in flight")
	logFlags := registerLogFlags(fs)
	files, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	logger, code, ok := logFlags.setup(e, c)
	if !ok {
		return code
	}
	cfg, code, ok := e.Load(c, files, &lf)
	if !ok {
		return code
	}
	opts := serve.Options{DataDir: *data, Admin: *admin, Drain: *drain, Logger: logger}
	flush, ok := e.tracing(ctx, c, logger, &opts)
	if !ok {
		return ExitFailure
	}
	defer flush()
	srv, err := serve.New(cfg, opts)
	if err != nil {
		printLoadError(e.Stderr, err)
		return ExitFailure
	}
	if err := srv.Listen(); err != nil {
		fmt.Fprintf(e.Stderr, "flowrun serve: %v\n", err)
		return ExitFailure
	}
	addrs := srv.Addrs()
	for _, key := range slices.Sorted(maps.Keys(addrs)) {
		kind, listen, _ := strings.Cut(key, " ") // "admin", "http 127.0.0.1:0"
		switch addr := addrs[key]; {
		case listen == "" || listen == addr:
			fmt.Fprintf(e.Stdout, "listening %s %s\n", kind, addr)
		default: // a port chosen by the system
			fmt.Fprintf(e.Stdout, "listening %s %s (listen: %q)\n", kind, addr, listen)
		}
	}
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintf(e.Stderr, "flowrun serve: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

func messagesCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["messages"]
	args, sigArgs, signal := cutSignal(args)
	fs := e.FlagSet(c)
	var lf LoadFlags
	lf.Register(fs)
	data := fs.String("data", "data", "folder of the default SQLite stores")
	chName := fs.String("channel", "", "the channel whose store to read (required)")
	state := fs.String("state", "", "only messages in this state: pending, processing, done, rejected, error, waiting")
	resume := fs.Bool("resume", false, "replay: resume a durable channel's message after its journaled steps, whatever its state")
	since := fs.String("since", "", "only messages at or after this time (RFC 3339) or this long ago (1h)")
	limit := fs.Int("limit", 50, "list at most N messages (0: all)")
	pos, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	var files []string
	var action, id string
	for i := 0; i < len(pos); i++ {
		if (pos[i] == "show" || pos[i] == "replay") && i+1 < len(pos) {
			action, id = pos[i], pos[i+1]
			i++
			continue
		}
		files = append(files, pos[i])
	}
	if *chName == "" {
		return e.usageError(c, "--channel is required")
	}
	q := store.Query{Desc: true, Limit: *limit}
	if *state != "" {
		st := store.State(*state)
		if !st.Valid() {
			return e.usageError(c, "--state: unknown state %q", *state)
		}
		q.States = []store.State{st}
	}
	if *since != "" {
		if d, err := time.ParseDuration(*since); err == nil {
			q.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, *since); err == nil {
			q.Since = t
		} else {
			return e.usageError(c, "--since: expected a time like 2026-01-02T15:04:05Z or a duration like 1h, got %q", *since)
		}
	}
	cfg, code, ok := e.Load(c, files, &lf)
	if !ok {
		return code
	}
	srv, err := serve.New(cfg, serve.Options{DataDir: *data, Admin: "off", Logger: slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		printLoadError(e.Stderr, err)
		return ExitFailure
	}
	defer srv.Close()
	ch, found := srv.Channel(*chName)
	if !found {
		var names []string
		for _, c := range srv.Channels() {
			names = append(names, c.Name())
		}
		return e.usageError(c, "no channel %q (channels: %s)", *chName, strings.Join(names, ", "))
	}
	st := ch.Store()
	if signal {
		return signalAction(ctx, e, c, ch, sigArgs)
	}
	switch action {
	case "show":
		rec, err := st.Get(ctx, id)
		if err != nil {
			fmt.Fprintf(e.Stderr, "flowrun messages: %v\n", err)
			return ExitFailure
		}
		shown := showRecord(rec)
		shown.Journal, shown.Wait = journalOf(ctx, st, id)
		out, _ := json.MarshalIndent(shown, "", "  ")
		fmt.Fprintln(e.Stdout, string(out))
		return ExitOK
	case "replay":
		replay := ch.Replay
		if *resume {
			replay = ch.Resume
		}
		res, err := replay(ctx, id)
		if err != nil {
			fmt.Fprintf(e.Stderr, "flowrun messages: %v\n", err)
			return ExitFailure
		}
		out, _ := json.MarshalIndent(res.Message.Context, "", "  ")
		fmt.Fprintln(e.Stdout, string(out))
		fmt.Fprintf(e.Stderr, "replayed %s: %s\n", id, res.State)
		if res.Err != nil {
			fmt.Fprintf(e.Stderr, "error: %v\n", res.Err)
			return exitCode(res.Err)
		}
		return ExitOK
	}
	recs, err := st.Search(ctx, q)
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun messages: %v\n", err)
		return ExitFailure
	}
	total, err := st.Count(ctx, q)
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun messages: %v\n", err)
		return ExitFailure
	}
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tSTATE\tOUTCOME\tATTEMPTS\tREASON\tERROR")
	for _, r := range recs {
		outcome := "-"
		if k, ok := r.KnownOutcome(); ok {
			outcome = k.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Message.ID, r.Message.Time.Format(time.RFC3339),
			r.State, outcome, r.Attempts, cell(r.Reason, 40), cell(r.Err, 60))
	}
	tw.Flush()
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(e.Stdout, strings.TrimRight(line, " \n")) // no padding after the last non-empty cell
	}
	fmt.Fprintf(e.Stdout, "%d of %d messages\n", len(recs), total)
	return ExitOK
}

// cell returns s for a table cell: on one line, cut to at most n runes.
func cell(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-3]) + "..."
}

// shownRecord is a record as "messages show" prints it: as the store
// encodes it, with the outcome of the record and of each transition
// written out whenever it is known (a Done record's "ok" included) and
// left out when none was recorded.
type shownRecord struct {
	*store.Record
	Outcome *errors.Kind      `json:"outcome,omitempty"`
	History []shownTransition `json:"history"`
	// Journal and Wait are a durable channel's: the steps its runs
	// completed, what it waits for.
	Journal []store.JournalEntry `json:"journal,omitempty"`
	Wait    *store.Wait          `json:"wait,omitempty"`
}

type shownTransition struct {
	store.Transition
	Outcome *errors.Kind `json:"outcome,omitempty"`
}

func showRecord(r *store.Record) shownRecord {
	known := func(k errors.Kind, ok bool) *errors.Kind {
		if !ok {
			return nil
		}
		return &k
	}
	out := shownRecord{Record: r, Outcome: known(r.KnownOutcome()), History: make([]shownTransition, len(r.History))}
	for i, t := range r.History {
		out.History[i] = shownTransition{Transition: t, Outcome: known(t.KnownOutcome())}
	}
	return out
}
