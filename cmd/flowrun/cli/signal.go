package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/internal/jsonenc"
)

// cutSignal takes the "signal ID NAME [--set k=v]... [--admin ADDR]
// [--token T]" action out of the arguments of flowrun messages: its
// --set flags are the signal's values, not configuration overrides.
func cutSignal(args []string) (rest, signal []string, ok bool) {
	for i, a := range args {
		if a == "signal" {
			return args[:i:i], args[i+1:], true
		}
	}
	return args, nil, false
}

// signalAction sends a signal to a message waiting in ch: through the
// admin API of a running flowrun serve with --admin, else by running the
// message here, as replay does.
func signalAction(ctx context.Context, e *Env, c *Command, ch *channel.Channel, args []string, data string) int {
	fs := flag.NewFlagSet("messages signal", flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	values := map[string]any{}
	fs.Func("set", "a value of the signal: `key=value` (repeatable); the value is JSON when it parses as JSON, else text", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return fmt.Errorf("expected key=value")
		}
		var x any
		if err := jsonenc.Unmarshal([]byte(v), &x); err != nil {
			x = v
		}
		values[k] = x
		return nil
	})
	admin := fs.String("admin", "", "send the signal to the flowrun serve whose admin address is `ADDR` (host:port) instead of running the message here")
	token := fs.String("token", "", "the admin token of that flowrun serve (--admin); default: $"+AdminTokenEnv+", else the token file in --data")
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return ExitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 2 {
		return e.usageError(c, "signal: expected a message ID and a signal name, got %d arguments", len(pos))
	}
	id, name := pos[0], pos[1]
	if *admin != "" {
		if *token == "" {
			*token = os.Getenv(AdminTokenEnv) // not the flag's default: help would print it
		}
		if *token == "" {
			if t, err := serve.ReadToken(filepath.Join(data, AdminTokenFile)); err == nil {
				*token = t // the file flowrun serve keeps in its data folder
			}
		}
		return signalRemote(ctx, e, *admin, *token, ch.Name(), id, name, values)
	}
	res, err := ch.Signal(ctx, id, name, values)
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun messages: %v\n", err)
		return ExitFailure
	}
	out, _ := json.MarshalIndent(res.Message.Context, "", "  ")
	fmt.Fprintln(e.Stdout, string(out))
	fmt.Fprintf(e.Stderr, "signalled %s: %s\n", id, res.State)
	if res.Err != nil {
		fmt.Fprintf(e.Stderr, "error: %v\n", res.Err)
		return exitCode(res.Err)
	}
	return ExitOK
}

// AdminTokenEnv names the environment variable holding the admin token:
// when it is set, flowrun serve requires it on its admin endpoints that
// change something instead of the token file's, and its clients
// (messages ... signal --admin, plan, apply, verify, rollback) send it.
const AdminTokenEnv = "FLOWRUN_ADMIN_TOKEN"

// signalRemote posts the signal to a running server's admin API.
func signalRemote(ctx context.Context, e *Env, admin, token, chName, id, name string, values map[string]any) int {
	body, err := json.Marshal(values)
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun messages: signal values: %v\n", err)
		return ExitFailure
	}
	u := "http://" + admin + "/channels/" + url.PathEscape(chName) + "/messages/" + url.PathEscape(id) + "/signals/" + url.PathEscape(name)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun messages: %v\n", err)
		return ExitUsage
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun messages: signal: %v\n", err)
		return ExitFailure
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		State   string         `json:"state"`
		Context map[string]any `json:"context"`
		Error   string         `json:"error"`
	}
	_ = json.Unmarshal(b, &out)
	if resp.StatusCode != http.StatusOK {
		msg := out.Error
		if msg == "" {
			msg = strings.TrimSpace(string(b))
		}
		fmt.Fprintf(e.Stderr, "flowrun messages: signal: %s: %s\n", resp.Status, msg)
		return ExitFailure
	}
	ctxOut, _ := json.MarshalIndent(out.Context, "", "  ")
	fmt.Fprintln(e.Stdout, string(ctxOut))
	fmt.Fprintf(e.Stderr, "signalled %s: %s\n", id, out.State)
	if out.Error != "" {
		fmt.Fprintf(e.Stderr, "error: %s\n", out.Error)
		if out.State == string(store.Rejected) {
			return ExitStopped
		}
		return ExitFailure
	}
	return ExitOK
}

// journalOf returns what "messages show" adds for a durable channel's
// message: its journal and its wait, when the store keeps them.
func journalOf(ctx context.Context, st store.Store, id string) ([]store.JournalEntry, *store.Wait) {
	j, ok := st.(store.Journal)
	if !ok {
		return nil, nil
	}
	entries, err := j.Journal(ctx, id)
	if err != nil || len(entries) == 0 {
		entries = nil
	}
	w, err := j.Wait(ctx, id)
	if err != nil {
		w = nil
	}
	return entries, w
}
