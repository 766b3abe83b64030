package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/errors"
)

func init() {
	register(&Command{
		Name:    "serve",
		Summary: "run the channels of YAML files: flows behind HTTP, schedules and file drops",
		Usage:   "flowrun serve FILE... [--data DIR] [--admin ADDR] [--admin-token-file PATH] [--drain 30s] [--log text|json] [--log-level LEVEL] [--set path=value]",
		Help: `Starts every channel declared under channels: (a source, a flow, a store)
and serves until SIGINT or SIGTERM, then stops gracefully: sources stop
taking messages, messages in flight finish (within --drain), services
close. Every message is recorded in its channel's store before its flow
runs (SQLite under --data by default), so messages a crash left unfinished
run again at the next start, in the background while new ones are served;
one whose runs crashed the process max_crashes times in a row (default 3)
is set aside in state dead ("gave up after N crashed runs") for a replay
by hand, as is one that failed max_deliveries times. Each store is probed with a write at start (an unwritable one
stops serve with exit 1) and while writes fail (/readyz answers 503).
The services: of the files run on a bus, and the components of a
production: section (business services, processes, operations) in a
production started before the channels and stopped after them.
A nats source without url runs a nats-server in the process, JetStream
stored under --data/nats; with url it connects (an unreachable server
or a stream that differs from its declaration stops serve with exit 1).
The admin address serves /healthz, /readyz and Prometheus /metrics; it
is bound to loopback by default ("off" disables it). Its endpoints that
change something (apply, rollback, signalling a waiting message) and
GET /config require the admin token as "Authorization: Bearer TOKEN":
the content of --admin-token-file (default DATA/admin-token, made with a
random token and mode 0600 when absent; flowrun plan, apply, verify,
rollback and messages signal read it there), or FLOWRUN_ADMIN_TOKEN when
that is set (an environment variable keeps it out of the process list).
An admin address that is not loopback is refused without a token. A
running serve changes configuration without a restart: see flowrun plan
and flowrun apply. It also serves the web console: open http://ADMIN/ in
a browser (its JSON API is under /api/); its actions need the admin
token, and reads do too when the admin address is not loopback. Tracing is off
unless OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_TRACES_EXPORTER=otlp asks for
OpenTelemetry spans (exported with OTLP over HTTP). flowrun validate
checks a file exactly as serve builds it.`,
		Example: `flowrun serve examples/intake/intake.yaml
flowrun serve flows.yaml --data /var/lib/flowrun --admin 127.0.0.1:9191`,
		Run: serveCmd,
	})
	register(&Command{
		Name:    "messages",
		Summary: "search a channel's stored messages, show one, replay them, or signal one",
		Usage:   "flowrun messages FILE... --channel NAME [--state STATE] [--since T] [--limit N] [show ID | replay ID [--from STEP | --resume] | replay --all --state STATE | signal ID NAME [--set k=v]... [--admin ADDR [--token T]]]",
		Help: `Reads the store of a channel declared in the files; a store that does not
exist is an error naming it (nothing is created: check --data or the
store's path). Without an action it lists messages (newest first): id,
time, state, outcome (ok, stop, retry-exhausted, failed, panic, ...; "-"
when none is recorded: pending, processing, or stored before outcomes
were), attempts, the reason of a rejection and the last error.

States: pending, processing, done, rejected, error, waiting (a durable
run parked at a wait step), and dead: set aside after max_deliveries
failed deliveries or max_crashes crashed runs, not run again until
replayed.

"show ID" prints the whole record as JSON (payload, context, trace,
outcome, reason, history; for a channel with durable: steps also its
journal, the steps completed with their writes, and what it waits for).
"replay ID" runs the stored message through the channel's flow again and
records the new outcome in its history; on a durable channel a finished
message (done, rejected, error, dead) runs from the top, an owed or
waiting one resumes after its journaled steps, and --resume resumes any.
With --from STEP it starts at that step, on the context the last run
stored, so the steps before it (a charge, a mail) do not run again.
"replay --all --state dead" replays every message in that state (and
--since), oldest first, a line each. "signal ID NAME --set k=v" sends the
signal NAME with values to a message waiting at a wait step of a durable
channel: with --admin ADDR through the admin API of the flowrun serve
running it (with its admin token: --token, else $FLOWRUN_ADMIN_TOKEN,
else the token file in --data), else the message resumes here. Stop flowrun serve first when
the store is a SQLite file shared with it only for replay and signal
without --admin.`,
		Example: `flowrun messages examples/intake/intake.yaml --channel intake --state dead
flowrun messages examples/intake/intake.yaml --channel intake show 1f0c...
flowrun messages examples/intake/intake.yaml --channel intake replay 1f0c...
flowrun messages examples/intake/intake.yaml --channel intake replay 1f0c... --from ship
flowrun messages examples/intake/intake.yaml --channel intake replay --all --state dead
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
	fs.String("data", "", dataUsage)
	admin := fs.String("admin", DefaultAdmin, "address of /healthz, /readyz, /metrics and the admin API (\"off\" to disable)")
	tokenFile := fs.String("admin-token-file", "", "the admin token's `file` (default: DATA/"+AdminTokenFile+", made with a random token, mode 0600, when absent); $"+AdminTokenEnv+" overrides it")
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
	lf.DataDir = dataDir(fs, files)
	cfg, code, ok := e.Load(c, files, &lf)
	if !ok {
		return code
	}
	token := os.Getenv(AdminTokenEnv)
	if token == "" && *admin != "off" {
		path := *tokenFile
		if path == "" {
			path = filepath.Join(dataDir(fs, files), AdminTokenFile)
		}
		var err error
		if token, err = serve.LoadOrCreateToken(path); err != nil {
			fmt.Fprintf(e.Stderr, "flowrun serve: %v\n", err)
			return ExitFailure
		}
		logger.Info("admin token", "file", path)
	}
	opts := serve.Options{DataDir: dataDir(fs, files), Admin: *admin, Drain: *drain, Logger: logger, AdminToken: token}
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
	fs.String("data", "", dataUsage)
	chName := fs.String("channel", "", "the channel whose store to read (required)")
	state := fs.String("state", "", "only messages in this `state`: pending, processing, done, rejected, error, dead, waiting")
	resume := fs.Bool("resume", false, "replay: resume a durable channel's message after its journaled steps, whatever its state")
	since := fs.String("since", "", "only messages at or after this time (RFC 3339) or this long ago (1h)")
	limit := fs.Int("limit", 50, "list at most N messages (0: all)")
	all := fs.Bool("all", false, "replay: every message that --state and --since select (instead of an ID)")
	from := fs.String("from", "", "replay: start at this `step`, on the context the last run stored (the steps before it are skipped)")
	pos, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	var files []string
	var action, id string
	for i := 0; i < len(pos); i++ {
		if pos[i] == "show" || pos[i] == "replay" {
			if action != "" {
				return e.usageError(c, "give one action: show ID or replay ID")
			}
			action = pos[i]
			if i+1 < len(pos) && !isConfigFile(pos[i+1]) {
				id = pos[i+1]
				i++
			}
			continue
		}
		files = append(files, pos[i])
	}
	switch {
	case action == "show" && id == "":
		return e.usageError(c, "show: expected a message ID: messages FILE --channel NAME show ID")
	case action == "replay" && id == "" && !*all:
		return e.usageError(c, "replay: expected a message ID, or --all with --state (replay --state dead --all)")
	case action == "replay" && id != "" && *all:
		return e.usageError(c, "replay: give an ID or --all, not both")
	case *all && action != "replay":
		return e.usageError(c, "--all applies to replay")
	case *from != "" && action != "replay":
		return e.usageError(c, "--from applies to replay")
	case *from != "" && *resume:
		return e.usageError(c, "replay: give --from STEP or --resume, not both")
	case *all && *state == "":
		return e.usageError(c, "replay --all: give --state (dead, error, ...) to say which messages")
	}
	if len(files) == 0 && lf.Example == "" {
		return e.usageError(c, "no file given")
	}
	if *chName == "" {
		return e.usageError(c, "--channel is required")
	}
	q := store.Query{Desc: true, Limit: *limit}
	if *state != "" {
		st := store.State(*state)
		if !st.Valid() {
			var names []string
			for _, s := range store.States {
				names = append(names, string(s))
			}
			return e.usageError(c, "--state: unknown state %q (expected one of %s)%s", *state, strings.Join(names, ", "), suggestOne(*state, names))
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
	lf.DataDir = dataDir(fs, files)
	cfg, code, ok := e.Load(c, files, &lf)
	if !ok {
		return code
	}
	var names []string
	for _, sec := range cfg.Channels() {
		names = append(names, sec.Name)
	}
	if !slices.Contains(names, *chName) {
		if len(names) == 0 {
			fmt.Fprintf(e.Stderr, "flowrun messages: the configuration declares no channels\n")
			return ExitFailure
		}
		return e.usageError(c, "no channel %q (channels: %s)%s", *chName, strings.Join(names, ", "), suggestOne(*chName, names))
	}
	srv, err := serve.New(cfg, serve.Options{DataDir: dataDir(fs, files), Admin: "off", Channel: *chName, ExistingStores: true,
		Logger: slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		printLoadError(e.Stderr, err)
		return ExitFailure
	}
	defer srv.Close()
	ch, _ := srv.Channel(*chName)
	st := ch.Store()
	if signal {
		return signalAction(ctx, e, c, ch, sigArgs, dataDir(fs, files))
	}
	switch action {
	case "show":
		rec, err := st.Get(ctx, id)
		if err != nil {
			return e.messageError(st, id, err)
		}
		shown := showRecord(rec)
		shown.Journal, shown.Wait = journalOf(ctx, st, id)
		out, _ := json.MarshalIndent(shown, "", "  ")
		fmt.Fprintln(e.Stdout, string(out))
		return ExitOK
	case "replay":
		if *all {
			return e.replayAll(ctx, ch, q, *from, *resume)
		}
		var res channel.Result
		switch {
		case *from != "":
			res, err = ch.ReplayFrom(ctx, id, *from)
		case *resume:
			res, err = ch.Resume(ctx, id)
		default:
			res, err = ch.Replay(ctx, id)
		}
		if err != nil {
			return e.messageError(st, id, err)
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

// isConfigFile reports whether a positional argument after show or
// replay is a configuration file rather than a message ID.
func isConfigFile(arg string) bool {
	return arg == "-" || strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml")
}

// messageError reports an error about one message: a missing one by its
// ID and the store it is not in.
func (e *Env) messageError(st store.Store, id string, err error) int {
	if errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(e.Stderr, "flowrun messages: no message %q in the channel's store (list them with the same command without show/replay)\n", id)
		return ExitFailure
	}
	fmt.Fprintf(e.Stderr, "flowrun messages: %v\n", err)
	return ExitFailure
}

// replayAll replays every message q selects (all of them: q's limit is
// ignored), oldest first, and prints a line per message and a summary.
// The exit code is 1 when any replay failed, else 3 when any stopped.
func (e *Env) replayAll(ctx context.Context, ch *channel.Channel, q store.Query, from string, resume bool) int {
	q.Desc, q.Limit = false, 0
	recs, err := ch.Store().Search(ctx, q)
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun messages: %v\n", err)
		return ExitFailure
	}
	counts := map[store.State]int{}
	code, done := ExitOK, 0
	for _, rec := range recs {
		if ctx.Err() != nil {
			fmt.Fprintf(e.Stderr, "interrupted: %d of %d replayed\n", done, len(recs))
			break
		}
		done++
		id := rec.Message.ID
		var res channel.Result
		switch {
		case from != "":
			res, err = ch.ReplayFrom(ctx, id, from)
		case resume:
			res, err = ch.Resume(ctx, id)
		default:
			res, err = ch.Replay(ctx, id)
		}
		if err != nil {
			fmt.Fprintf(e.Stdout, "%s\tfailed\t%v\n", id, err)
			code = ExitFailure
			continue
		}
		counts[res.State]++
		line := fmt.Sprintf("%s\t%s", id, res.State)
		if res.Err != nil {
			line += "\t" + cell(res.Err.Error(), 120)
			if c := exitCode(res.Err); c == ExitFailure || code == ExitOK {
				code = c
			}
		}
		fmt.Fprintln(e.Stdout, line)
	}
	var parts []string
	for _, s := range store.States {
		if n := counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	summary := "nothing"
	if len(parts) > 0 {
		summary = strings.Join(parts, ", ")
	}
	fmt.Fprintf(e.Stderr, "replayed %d messages: %s\n", done, summary)
	return code
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
