package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/serve"
)

// DefaultAdmin is the admin address flowrun serve listens on by default,
// and the one the clients of its admin API (plan, apply, verify,
// rollback) reach without --server.
const DefaultAdmin = "127.0.0.1:9090"

// AdminTokenFile is the name of the admin token file flowrun serve keeps
// in its data folder (--data) unless --admin-token-file says otherwise.
const AdminTokenFile = "admin-token"

const adminClientHelp = `The admin token is --token, else $FLOWRUN_ADMIN_TOKEN, else the content of
the token file flowrun serve keeps in its data folder (--data DIR: DIR/admin-token;
--token-file PATH for another file).`

func init() {
	register(&Command{
		Name:    "plan",
		Summary: "diff new YAML files against a running flowrun serve: a plan of safe and destructive changes",
		Usage:   "flowrun plan NEW.yaml... [--server ADDR] [--out PLAN.json] [--set path=value] [--data DIR] [--token T] | flowrun plan --review PLAN.json",
		Help: `Reads the running configuration of the flowrun serve whose admin address
is --server (GET /config), checks the new files as validate does, and
writes a plan (JSON): the fingerprint of the running configuration, the
new files, and each change (add, remove or change of a channel, flow,
service, provider, production component, var), classified:

  safe         adding a channel, flow or component; changing settings
               (a flow's steps, a channel's max_in_flight, a var)
  destructive  removing one; changing what implements it (a channel's
               flow, store or sources: a route removed or moved)

With --out the plan goes to that file and the review to standard output;
without, the plan is printed (JSON) and the review goes to standard
error. "plan --review PLAN.json" prints a plan for a person. Apply it
with flowrun apply.

` + adminClientHelp,
		Example: `flowrun plan orders-v2.yaml --server 127.0.0.1:9090 --out plan.json
flowrun plan --review plan.json`,
		Run: planCmd,
	})
	register(&Command{
		Name:    "apply",
		Summary: "apply a plan to the running flowrun serve it was made for, without a restart",
		Usage:   "flowrun apply PLAN.json [--allow-destructive] [--server ADDR] [--data DIR] [--token T]",
		Help: `Sends the plan to the flowrun serve it was made against (its --server, or
the one recorded in the plan). The server refuses a plan made against a
configuration it no longer runs (make the plan again), and destructive
changes unless --allow-destructive. It saves its running configuration
into DATA/backups/ first (the path is printed: give it to flowrun
rollback), builds the new configuration fully (any error: nothing
changes), then reloads: unchanged channels keep running untouched; a
changed channel's new instance takes new messages while the old one
finishes those in flight (HTTP routes switch at once; other sources stop
before their new instance starts), so no message is lost or run twice;
removed channels drain and stop; added ones start. It answers once the
old instances stopped.

` + adminClientHelp,
		Example: `flowrun apply plan.json
flowrun apply plan.json --allow-destructive`,
		Run: applyCmd,
	})
	register(&Command{
		Name:    "verify",
		Summary: "list what of a plan a running flowrun serve does not run yet",
		Usage:   "flowrun verify PLAN.json [--server ADDR] [--data DIR] [--token T]",
		Help: `Compares the configuration the server runs (GET /config) with the plan's
new configuration and lists each difference not yet applied. Exit code 0
when the server runs the plan's configuration, 1 otherwise.

` + adminClientHelp,
		Example: `flowrun verify plan.json`,
		Run:     verifyCmd,
	})
	register(&Command{
		Name:    "rollback",
		Summary: "restore a configuration an apply saved, on the running flowrun serve",
		Usage:   "flowrun rollback BACKUP [--server ADDR] [--data DIR] [--token T]",
		Help: `Restores the configuration saved in BACKUP (a file an apply wrote into
the server's DATA/backups/; its name is enough) on the running server. A
rollback is an apply of the backup's configuration made against whatever
runs now, destructive changes allowed by nature (undoing an added channel
removes it); the server saves the configuration it replaces first, so a
rollback can be rolled back too.

` + adminClientHelp,
		Example: `flowrun rollback data/backups/config-20261130T041500.000000000Z-3f2a9c.json`,
		Run:     rollbackCmd,
	})
}

// adminFlags are the flags of the clients of the admin API.
type adminFlags struct {
	server, data, token, tokenFile *string
}

func registerAdminFlags(fs *flag.FlagSet) adminFlags {
	return adminFlags{
		server:    fs.String("server", "", "the admin address of the flowrun serve, host:port (default: the plan's, else "+DefaultAdmin+")"),
		data:      fs.String("data", "", "the data folder of that flowrun serve, where its admin token file is (default: data beside the first configuration file)"),
		token:     fs.String("token", "", "the admin token (default: $"+AdminTokenEnv+", else the token file)"),
		tokenFile: fs.String("token-file", "", "read the admin token from this file (default: DATA/"+AdminTokenFile+")"),
	}
}

// adminClient talks to the admin API of a running flowrun serve.
type adminClient struct {
	base, token string
}

// client resolves the server and the token: --token, then the
// environment, then the token file (--token-file, else DATA/admin-token,
// DATA being --data or defaultData). A missing token file is no error:
// the server may need none.
func (af adminFlags) client(e *Env, c *Command, planServer, defaultData string) (*adminClient, int, bool) {
	server := *af.server
	if server == "" {
		server = planServer
	}
	if server == "" {
		server = DefaultAdmin
	}
	if strings.Contains(server, "://") {
		return nil, e.usageError(c, "--server: expected host:port, got %q", server), false
	}
	tok := *af.token
	if tok == "" {
		tok = os.Getenv(AdminTokenEnv)
	}
	if tok == "" {
		path := *af.tokenFile
		if path == "" {
			data := *af.data
			if data == "" {
				data = defaultData
			}
			path = filepath.Join(data, AdminTokenFile)
		}
		t, err := serve.ReadToken(path)
		switch {
		case err == nil:
			tok = t
		case *af.tokenFile != "" || !errors.Is(err, os.ErrNotExist):
			fmt.Fprintf(e.Stderr, "flowrun %s: %v\n", c.Name, err)
			return nil, ExitFailure, false
		}
	}
	return &adminClient{base: "http://" + server, token: tok}, 0, true
}

// do sends a request; it returns the status and body.
func (a *adminClient) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, b, err
}

// running fetches the running configuration.
func (a *adminClient) running(ctx context.Context) (serve.RunningConfig, error) {
	var rc serve.RunningConfig
	code, b, err := a.do(ctx, http.MethodGet, "/config", nil)
	if err != nil {
		return rc, fmt.Errorf("GET %s/config: %w", a.base, err)
	}
	if code != http.StatusOK {
		return rc, fmt.Errorf("GET %s/config: %s", a.base, answerError(code, b))
	}
	if err := json.Unmarshal(b, &rc); err != nil || rc.Fingerprint == "" {
		return rc, fmt.Errorf("GET %s/config: not a running configuration (is this a flowrun serve admin address?)", a.base)
	}
	return rc, nil
}

// answerError is the text of an admin API error answer.
func answerError(code int, b []byte) string {
	var out struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &out) == nil && out.Error != "" {
		msg = out.Error
	}
	if code == http.StatusUnauthorized {
		msg += " (give the server's token: --token, $" + AdminTokenEnv + ", or --data DIR of the server)"
	}
	return fmt.Sprintf("%d %s: %s", code, http.StatusText(code), msg)
}

func planCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["plan"]
	fs := e.FlagSet(c)
	var lf LoadFlags
	lf.Register(fs)
	af := registerAdminFlags(fs)
	out := fs.String("out", "", "write the plan to this `file` (default: standard output)")
	review := fs.String("review", "", "print the plan in this `file` for a person, and nothing else")
	files, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	if *review != "" {
		if len(files) > 0 {
			return e.usageError(c, "--review PLAN takes no configuration files")
		}
		p, ok := readPlan(e, c, *review)
		if !ok {
			return ExitFailure
		}
		printReview(e.Stdout, p)
		return ExitOK
	}
	if len(files) == 0 {
		return e.usageError(c, "expected the new configuration files (or --review PLAN)")
	}
	var abs []string
	for _, f := range files {
		if f == "-" {
			abs = append(abs, f)
			continue
		}
		a, err := filepath.Abs(f)
		if err != nil {
			fmt.Fprintf(e.Stderr, "flowrun plan: %v\n", err)
			return ExitFailure
		}
		abs = append(abs, a)
	}
	cfg, code, ok := e.Load(c, abs, &lf)
	if !ok {
		return code
	}
	if err := serve.Check(cfg, serve.Options{DataDir: dataDir(fs, files)}); err != nil {
		printLoadError(e.Stderr, err)
		return ExitFailure
	}
	cl, code, ok := af.client(e, c, "", dataDir(fs, files))
	if !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	running, err := cl.running(ctx)
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun plan: %v\n", err)
		return ExitFailure
	}
	newFiles := serve.FilesOf(cfg)
	p, err := serve.NewPlan(running, newFiles)
	if err != nil {
		printLoadError(e.Stderr, err)
		return ExitFailure
	}
	p.Server = strings.TrimPrefix(cl.base, "http://")
	b, _ := json.MarshalIndent(p, "", "  ")
	b = append(b, '\n')
	if *out == "" {
		_, _ = e.Stdout.Write(b)
		printReview(e.Stderr, p)
		return ExitOK
	}
	if err := os.WriteFile(*out, b, 0o600); err != nil { // the files may hold credentials
		fmt.Fprintf(e.Stderr, "flowrun plan: %v\n", err)
		return ExitFailure
	}
	printReview(e.Stdout, p)
	fmt.Fprintf(e.Stdout, "plan written to %s\n", *out)
	return ExitOK
}

// readPlan reads a plan file.
func readPlan(e *Env, c *Command, path string) (*serve.Plan, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun %s: %v\n", c.Name, err)
		return nil, false
	}
	var p serve.Plan
	if err := json.Unmarshal(b, &p); err != nil || p.Version == 0 || p.Base == "" {
		fmt.Fprintf(e.Stderr, "flowrun %s: %s: not a plan (write one with flowrun plan NEW.yaml --out PLAN.json)\n", c.Name, path)
		return nil, false
	}
	if p.Version != serve.PlanVersion {
		fmt.Fprintf(e.Stderr, "flowrun %s: %s: plan version %d, this flowrun reads version %d\n", c.Name, path, p.Version, serve.PlanVersion)
		return nil, false
	}
	return &p, true
}

// printReview prints a plan for a person.
func printReview(w io.Writer, p *serve.Plan) {
	server := p.Server
	if server == "" {
		server = "(not recorded)"
	}
	fmt.Fprintf(w, "plan for %s\n  running: %s\n  new:     %s\n", server, p.Base, p.Fingerprint)
	var names []string
	for _, f := range p.Config.Files {
		names = append(names, f.Name)
	}
	fmt.Fprintf(w, "  files:   %s\n", strings.Join(names, ", "))
	if len(p.Config.Sets) > 0 {
		fmt.Fprintf(w, "  --set:   %s\n", strings.Join(p.Config.Sets, ", "))
	}
	if len(p.Changes) == 0 {
		fmt.Fprintln(w, "no changes: the server runs this configuration")
		return
	}
	safe, destructive := 0, 0
	for _, class := range []serve.Class{serve.Destructive, serve.Safe} {
		for _, ch := range p.Changes {
			if ch.Class != class {
				continue
			}
			mark := "  "
			if class == serve.Destructive {
				mark = "! "
				destructive++
			} else {
				safe++
			}
			line := fmt.Sprintf("%s%-11s %-6s %s %s", mark, ch.Class, ch.Kind, ch.What, ch.Name)
			if ch.Detail != "" {
				line += ": " + ch.Detail
			}
			fmt.Fprintln(w, line)
		}
	}
	fmt.Fprintf(w, "%d change(s): %d safe, %d destructive\n", safe+destructive, safe, destructive)
	if destructive > 0 {
		fmt.Fprintln(w, "destructive changes apply only with: flowrun apply PLAN --allow-destructive")
	}
}

// planData is the default data folder of a plan's server: data beside
// the plan's first configuration file, as flowrun serve defaults it.
func planData(p *serve.Plan) string {
	for _, f := range p.Config.Files {
		if f.Name != "" && f.Name != "stdin" {
			return filepath.Join(filepath.Dir(f.Name), "data")
		}
	}
	return "data"
}

func applyCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["apply"]
	fs := e.FlagSet(c)
	af := registerAdminFlags(fs)
	destructive := fs.Bool("allow-destructive", false, "apply the plan's destructive changes too (removals, a channel's flow, store or sources changed)")
	pos, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return e.usageError(c, "expected one plan file (write one with flowrun plan NEW.yaml --out PLAN.json)")
	}
	p, ok := readPlan(e, c, pos[0])
	if !ok {
		return ExitFailure
	}
	cl, code, ok := af.client(e, c, p.Server, planData(p))
	if !ok {
		return code
	}
	status, b, err := cl.do(ctx, http.MethodPost, "/apply", map[string]any{"plan": p, "allow_destructive": *destructive})
	return e.applyAnswer(c, status, b, err)
}

func rollbackCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["rollback"]
	fs := e.FlagSet(c)
	af := registerAdminFlags(fs)
	pos, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return e.usageError(c, "expected one backup: the file an apply wrote into the server's DATA/backups/")
	}
	backup := pos[0]
	cl, code, ok := af.client(e, c, "", filepath.Dir(filepath.Dir(backup)))
	if !ok {
		return code
	}
	status, b, err := cl.do(ctx, http.MethodPost, "/rollback", map[string]any{"backup": backup})
	return e.applyAnswer(c, status, b, err)
}

// applyAnswer prints the answer of POST /apply or /rollback.
func (e *Env) applyAnswer(c *Command, status int, b []byte, err error) int {
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun %s: %v\n", c.Name, err)
		return ExitFailure
	}
	if status != http.StatusOK {
		var out struct {
			Errors      []string       `json:"errors"`
			Destructive []serve.Change `json:"destructive"`
		}
		_ = json.Unmarshal(b, &out)
		switch {
		case len(out.Destructive) > 0:
			fmt.Fprintf(e.Stderr, "flowrun %s: refused: the plan has destructive changes:\n", c.Name)
			for _, ch := range out.Destructive {
				fmt.Fprintf(e.Stderr, "  %s\n", ch)
			}
			fmt.Fprintf(e.Stderr, "review them (flowrun plan --review PLAN), then apply with --allow-destructive\n")
		case status == http.StatusConflict:
			fmt.Fprintf(e.Stderr, "flowrun %s: %s\n", c.Name, answerError(status, b))
		default:
			fmt.Fprintf(e.Stderr, "flowrun %s: %s\n", c.Name, answerError(status, b))
			for _, line := range out.Errors {
				fmt.Fprintf(e.Stderr, "  %s\n", line)
			}
		}
		return ExitFailure
	}
	var res serve.ApplyResult
	if err := json.Unmarshal(b, &res); err != nil {
		fmt.Fprintf(e.Stderr, "flowrun %s: the answer is not a result: %v\n", c.Name, err)
		return ExitFailure
	}
	if len(res.Changes) == 0 {
		fmt.Fprintf(e.Stdout, "nothing to apply: the server runs %s\n", res.Fingerprint)
		return ExitOK
	}
	for _, ch := range res.Changes {
		fmt.Fprintf(e.Stdout, "applied %s\n", ch)
	}
	for _, x := range []struct {
		what  string
		names []string
	}{{"started", res.Started}, {"replaced", res.Replaced}, {"stopped", res.Stopped}, {"kept", res.Kept}} {
		if len(x.names) > 0 {
			fmt.Fprintf(e.Stdout, "channels %s: %s\n", x.what, strings.Join(x.names, ", "))
		}
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(e.Stderr, "warning: %s\n", w)
	}
	fmt.Fprintf(e.Stdout, "running: %s\nbackup: %s (flowrun rollback %s)\n", res.Fingerprint, res.Backup, res.Backup)
	return ExitOK
}

func verifyCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["verify"]
	fs := e.FlagSet(c)
	af := registerAdminFlags(fs)
	pos, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return e.usageError(c, "expected one plan file")
	}
	p, ok := readPlan(e, c, pos[0])
	if !ok {
		return ExitFailure
	}
	cl, code, ok := af.client(e, c, p.Server, planData(p))
	if !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	running, err := cl.running(ctx)
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun verify: %v\n", err)
		return ExitFailure
	}
	want, err := config.Normalize(p.Config.Sources(), p.Config.Sets...)
	if err != nil {
		printLoadError(e.Stderr, err)
		return ExitFailure
	}
	missing := serve.Diff(config.Normalized{Sections: running.Sections}, want)
	if len(missing) == 0 {
		fmt.Fprintf(e.Stdout, "applied: the server runs the plan's configuration (%s)\n", running.Fingerprint)
		return ExitOK
	}
	fmt.Fprintf(e.Stdout, "not applied: %d change(s) of the plan are not running (the server runs %s, the plan's is %s):\n", len(missing), running.Fingerprint, want.Fingerprint())
	for _, ch := range missing {
		fmt.Fprintf(e.Stdout, "  %s\n", ch)
	}
	return ExitFailure
}
