package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/production"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/provide"
	yaml "go.yaml.in/yaml/v4"
)

// Errors of [Server.Apply] and [Server.Rollback] (wrapped).
var (
	// ErrStalePlan: the plan was made against a configuration other than
	// the one running (another apply came first): make it again.
	ErrStalePlan = errors.New("stale plan: the running configuration is not the one the plan was made against")
	// ErrApplying: another apply or rollback is under way.
	ErrApplying = errors.New("another apply is under way")
	// ErrNeedsRestart: the plan changes what cannot change while the
	// server runs (services:, production:, sources that share a server
	// other than HTTP's, such as nats).
	ErrNeedsRestart = errors.New("this change needs a restart of the server")
	// ErrInvalidPlan: the plan is not one (a version this server does not
	// read, files that do not parse).
	ErrInvalidPlan = errors.New("invalid plan")
	// ErrNotRunning: the server is not running (Run has not started its
	// channels, or it is stopping).
	ErrNotRunning = errors.New("the server is not running")
	// ErrNoBackup: no such backup in the backups folder.
	ErrNoBackup = errors.New("no such backup")
)

// DestructiveError is the error of an apply refused because the plan
// has destructive changes and ApplyOptions.AllowDestructive is false.
type DestructiveError struct {
	Changes []Change
}

func (e *DestructiveError) Error() string {
	var lines []string
	for _, c := range e.Changes {
		lines = append(lines, c.String())
	}
	return fmt.Sprintf("refused: %d destructive change(s) (apply with --allow-destructive, allow_destructive: true): %s", len(e.Changes), strings.Join(lines, "; "))
}

// ApplyOptions qualify an apply.
type ApplyOptions struct {
	// AllowDestructive applies a plan that has destructive changes.
	AllowDestructive bool
}

// ApplyResult says what an apply (or a rollback) did.
type ApplyResult struct {
	// Fingerprint is the fingerprint of the configuration running now.
	Fingerprint string `json:"fingerprint"`
	// Backup is the file the configuration replaced was saved to, under
	// the data folder's backups/: give it to rollback.
	Backup string `json:"backup,omitempty"`
	// Changes are the changes applied.
	Changes []Change `json:"changes"`
	// Started names the channels added, Replaced those changed (a new
	// instance took over while the old one drained), Stopped those
	// removed (drained and stopped), Kept those unchanged (untouched).
	Started  []string `json:"started,omitempty"`
	Replaced []string `json:"replaced,omitempty"`
	Stopped  []string `json:"stopped,omitempty"`
	Kept     []string `json:"kept,omitempty"`
	// Production is "restarted" when the production: section (or a flow
	// its components run) changed: the old production drained and
	// stopped, then the new one started (its business services answer
	// 503 with Retry-After meanwhile).
	Production string `json:"production,omitempty"`
	// Warnings are problems met once the new configuration ran: an old
	// instance whose drain ran out of time (its messages left owed run
	// again in the new one), a store that failed to close.
	Warnings []string `json:"warnings,omitempty"`
}

// reloadState is the running configuration and what a hot reload needs.
type reloadState struct {
	mu      sync.Mutex     // one apply at a time; guards the fields below
	chMu    sync.RWMutex   // guards Server.channels
	wg      sync.WaitGroup // the goroutines Run waits for: servers
	current atomic.Pointer[running]

	parts    map[*channel.Channel]*parts
	gen      *generation
	old      []*generation
	running  bool
	serveCtx context.Context
	building *component.Servers // where sources being built register (staging)
}

// running is the configuration a server runs.
type running struct {
	cfg    *config.Config
	normal config.Normalized
	fp     string
	err    error // the configuration could not be normalized
}

// parts are what serve keeps of a running channel.
type parts struct {
	store    store.Store
	storeKey string // the store's component and spec: an instance with the same one shares it
	sources  []channel.Source
	gen      *generation
}

// generation is one loaded configuration's providers, closed when the
// last channel built from it stopped.
type generation struct {
	providers *provide.Container
	users     int
}

// sourceServers returns where the sources being built register: the
// staging set while a plan is built, else the running servers.
func (s *Server) sourceServers() *component.Servers {
	if s.reload.building != nil {
		return s.reload.building
	}
	return s.servers
}

// track records the parts of a channel New built.
func (s *Server) track(ch *channel.Channel, p plan, st store.Store) {
	if s.reload.parts == nil {
		s.reload.parts = map[*channel.Channel]*parts{}
	}
	s.reload.parts[ch] = &parts{store: st, storeKey: storeKey(p.spec.Store), sources: p.sources}
}

// setRunning records cfg as the configuration New built.
func (s *Server) setRunning(cfg *config.Config) {
	s.reload.gen = &generation{providers: s.providers, users: len(s.channels)}
	for _, pt := range s.reload.parts {
		pt.gen = s.reload.gen
	}
	s.reload.current.Store(newRunning(cfg))
}

func newRunning(cfg *config.Config) *running {
	n, err := cfg.Normalized()
	return &running{cfg: cfg, normal: n, fp: n.Fingerprint(), err: err}
}

// storeKey identifies a store by its component and spec.
func storeKey(r component.Ref) string {
	if r.IsZero() {
		return ""
	}
	b, err := json.Marshal(r.Spec)
	if err != nil {
		return fmt.Sprintf("%s %+v", r, r.Spec)
	}
	return r.String() + " " + string(b)
}

// startReloads lets plans be applied (Run, once the channels started).
func (s *Server) startReloads(serveCtx context.Context) {
	s.reload.mu.Lock()
	s.reload.running, s.reload.serveCtx = true, serveCtx
	s.reload.mu.Unlock()
}

// endReloads waits for an apply under way, refuses the next ones, and
// returns the channels running (Run stops them).
func (s *Server) endReloads() []*channel.Channel {
	s.reload.mu.Lock()
	s.reload.running = false
	s.reload.mu.Unlock()
	return s.Channels()
}

// closeOldProviders closes the providers of configurations a plan
// replaced whose channels still ran.
func (s *Server) closeOldProviders(ctx context.Context) {
	s.reload.mu.Lock()
	old := s.reload.old
	s.reload.old = nil
	s.reload.mu.Unlock()
	for _, g := range old {
		if g.providers != nil {
			if err := g.providers.Close(ctx); err != nil {
				s.log.Warn("closing providers", "error", err)
			}
		}
	}
}

// RunningConfig returns the configuration the server runs, normalized,
// and its fingerprint (what GET /config answers).
func (s *Server) RunningConfig() RunningConfig {
	cur := s.reload.current.Load()
	if cur == nil {
		return RunningConfig{}
	}
	return RunningConfig{Fingerprint: cur.fp, Sections: cur.normal.Sections, Config: FilesOf(cur.cfg)}
}

// Apply changes the running configuration into the plan's, without a
// restart (a hot reload). It refuses a plan made against another
// configuration than the one running (ErrStalePlan), one with
// destructive changes unless opts.AllowDestructive (*DestructiveError),
// and one that changes what cannot change while running
// (ErrNeedsRestart). It writes a backup of the running configuration
// into the data folder's backups/ first (ApplyResult.Backup), then:
//
//   - builds the new configuration fully (every channel checked, the
//     changed and added ones built, their stores opened, new listeners
//     bound): on any error nothing changes;
//   - channels whose definition is unchanged (their entry, their flow,
//     the flows it calls, vars and providers) keep running untouched;
//   - a changed channel whose sources are HTTP routes is swapped: its new
//     instance starts, its routes replace the old ones atomically (new
//     requests go to it), and the old instance drains its messages in
//     flight (within Options.Drain) and stops; on the same store, the
//     new instance runs again what the old one left owed only once it
//     stopped, so no message runs twice. A changed channel with other
//     sources (a schedule, a folder, a poll) is stopped (drained) before
//     its new instance starts, so no message is taken twice;
//   - removed channels stop taking messages at once (their routes answer
//     404), drain and stop; added ones start.
//
// It returns once the old instances stopped.
func (s *Server) Apply(ctx context.Context, p *Plan, opts ApplyOptions) (*ApplyResult, error) {
	if p == nil || p.Version != PlanVersion {
		v := 0
		if p != nil {
			v = p.Version
		}
		return nil, fmt.Errorf("%w: version %d, this server reads version %d", ErrInvalidPlan, v, PlanVersion)
	}
	if !s.reload.mu.TryLock() {
		return nil, ErrApplying
	}
	defer s.reload.mu.Unlock()
	if cur := s.reload.current.Load(); cur == nil || cur.fp != p.Base {
		fp := ""
		if cur != nil {
			fp = cur.fp
		}
		return nil, fmt.Errorf("%w: the plan's base is %s, the server runs %s (make the plan again)", ErrStalePlan, p.Base, fp)
	}
	return s.applyFiles(ctx, p.Config, opts.AllowDestructive)
}

// Rollback restores the configuration saved in a backup an apply wrote
// (its file name, or its path: only files of the data folder's backups/
// are read). It is an apply of the backup's configuration, destructive
// changes allowed (undoing an added channel removes it) and whatever
// runs now (no base to match); it writes a backup of the configuration
// it replaces first.
func (s *Server) Rollback(ctx context.Context, backup string) (*ApplyResult, error) {
	name := filepath.Base(strings.TrimSpace(backup))
	if name == "." || name == string(filepath.Separator) || !strings.HasSuffix(name, ".json") {
		return nil, fmt.Errorf("%w: %q: expected a backup file name (config-....json)", ErrNoBackup, backup)
	}
	path := filepath.Join(s.backupDir(), name)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoBackup, path, err)
	}
	var rc RunningConfig
	if err := json.Unmarshal(b, &rc); err != nil || len(rc.Config.Files) == 0 {
		return nil, fmt.Errorf("%w: backup %s holds no configuration", ErrInvalidPlan, path)
	}
	if !s.reload.mu.TryLock() {
		return nil, ErrApplying
	}
	defer s.reload.mu.Unlock()
	return s.applyFiles(ctx, rc.Config, true)
}

// backupDir is the folder of the backups.
func (s *Server) backupDir() string { return filepath.Join(s.opts.DataDir, "backups") }

// writeBackup saves the running configuration; it returns the file's
// path.
func (s *Server) writeBackup(rc RunningConfig) (string, error) {
	dir := s.backupDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	b, err := json.MarshalIndent(rc, "", "  ")
	if err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	fp := strings.TrimPrefix(rc.Fingerprint, "sha256:")
	name := fmt.Sprintf("config-%s-%s.json", time.Now().UTC().Format("20060102T150405.000000000Z"), fp[:min(12, len(fp))])
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil { // it may hold credentials, as the files do
		return "", fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("backup: %w", err)
	}
	return path, nil
}

// reloadable are the sections a hot reload changes; a change of any
// other (services:) needs a restart.
var reloadable = []string{"version", "vars", "providers", "flows", "channels", "production", "tests"}

// next is a channel of the new configuration being built.
type next struct {
	name     string
	old      *channel.Channel // nil: added
	ch       *channel.Channel
	parts    *parts
	shared   bool // on the old instance's store
	overlap  bool // swapped while the old drains (its sources are routes)
	openedSt bool // its store was opened for it
}

// applyFiles hot-reloads the configuration files; s.reload.mu is held.
func (s *Server) applyFiles(ctx context.Context, files Files, allowDestructive bool) (*ApplyResult, error) {
	if !s.reload.running {
		return nil, ErrNotRunning
	}
	cur := s.reload.current.Load()
	if cur.err != nil {
		return nil, fmt.Errorf("%w: the running configuration: %v", ErrNeedsRestart, cur.err)
	}
	norm, err := config.Normalize(files.Sources(), files.Sets...)
	if err != nil {
		return nil, err
	}
	changes := Diff(cur.normal, norm)
	res := &ApplyResult{Fingerprint: cur.fp, Changes: changes}
	if len(changes) == 0 {
		res.Kept = channelNames(s.Channels())
		return res, nil
	}
	if !allowDestructive {
		var d []Change
		for _, c := range changes {
			if c.Class == Destructive {
				d = append(d, c)
			}
		}
		if len(d) > 0 {
			return nil, &DestructiveError{Changes: d}
		}
	}
	for sec := range sectionsOf(cur.normal, norm) {
		if !slices.Contains(reloadable, sec) && !equalSection(cur.normal, norm, sec) {
			return nil, fmt.Errorf("%w: section %s changed (a running server changes channels, production, flows, vars and providers)", ErrNeedsRestart, sec)
		}
	}
	cfg, err := cur.cfg.LoadLike(files.Sources(), files.Sets...)
	if err != nil {
		return nil, err
	}
	checkOpts := s.opts
	checkOpts.Channel, checkOpts.ExistingStores = "", false
	if err := Check(cfg, checkOpts); err != nil {
		return nil, err
	}

	// Which channels change.
	all := !equalSection(cur.normal, norm, "vars") || !equalSection(cur.normal, norm, "providers")
	live := map[string]*channel.Channel{}
	for _, ch := range s.Channels() {
		live[ch.Name()] = ch
	}
	var build []config.Section
	inNew := map[string]bool{}
	for _, sec := range cfg.Channels() {
		inNew[sec.Name] = true
		if old, ok := live[sec.Name]; ok && !all && !channelChanged(sec.Name, cur.normal, norm) {
			res.Kept = append(res.Kept, old.Name())
			continue
		}
		build = append(build, sec)
	}
	var removed []*channel.Channel
	for _, ch := range s.Channels() {
		if !inNew[ch.Name()] {
			removed = append(removed, ch)
		}
	}

	backup, err := s.writeBackup(s.RunningConfig())
	if err != nil {
		return nil, err
	}
	res.Backup = backup

	// Build the changed and added channels, their sources on staging
	// servers; nothing running changes.
	staging := &component.Servers{}
	s.reload.building = staging
	gen := &generation{providers: cfg.Providers()}
	var nexts []*next
	fail := func(err error) (*ApplyResult, error) {
		for _, n := range nexts {
			if n.ch != nil {
				_ = n.ch.Stop(context.WithoutCancel(ctx))
			}
			if n.openedSt && n.parts != nil {
				if cerr := n.parts.store.Close(); cerr != nil {
					s.log.Warn("closing store", "error", cerr)
				}
			}
		}
		for key, srv := range staging.All() {
			if _, ok := s.servers.All()[key]; !ok {
				closeUnserved(srv)
			}
		}
		if gen.providers != nil {
			_ = gen.providers.Close(context.WithoutCancel(ctx))
		}
		return res, err
	}
	var errs config.Errors
	for _, sec := range build {
		p, perrs := s.plan(cfg, sec)
		if len(perrs) > 0 {
			errs = append(errs, perrs...)
			continue
		}
		n := &next{name: sec.Name, old: live[sec.Name]}
		nexts = append(nexts, n)
		key := storeKey(p.spec.Store)
		var st store.Store
		if n.old != nil {
			if op := s.reload.parts[n.old]; op != nil && op.storeKey == key && key != "" {
				st, n.shared = op.store, true
			}
		}
		if st == nil {
			st, err = p.open()
			if err != nil {
				errs = append(errs, p.at.Errorf("store", "channel %q: %s", p.spec.Name, storeError(p.spec.Store.Component.Name, err)))
				continue
			}
			n.openedSt = true
			if _, err := store.Probe(ctx, st); err != nil {
				errs = append(errs, p.at.Errorf("store", "channel %q: %v: %s", p.spec.Name, channel.ErrStoreNotWritable, storeError(p.spec.Store.Component.Name, err)))
				n.parts = &parts{store: st}
				continue
			}
		}
		n.parts = &parts{store: st, storeKey: key, sources: p.sources, gen: gen}
		if _, ok := st.(store.Journal); p.spec.durable() && !ok {
			errs = append(errs, p.at.Errorf("durable", "channel %q: durable: steps: store %s keeps no journal of durable runs", p.spec.Name, p.spec.Store.Component.Name))
			continue
		}
		n.overlap = n.old == nil || (allDetach(p.sources) && allDetach(s.reload.parts[n.old].sources))
		cc := s.channelConfig(p, st)
		cc.DeferRecovery = n.shared && n.overlap
		ch, err := channel.New(cc)
		if err != nil {
			errs = append(errs, p.at.Errorf("", "channel %q: %v", p.spec.Name, err))
			continue
		}
		n.ch = ch
	}
	var prod *production.Built
	prodChanged := all || productionChanged(cur.normal, norm)
	if prodChanged && len(errs) == 0 {
		prod, err = s.buildProduction(cfg, true)
		if err != nil {
			var perrs config.Errors
			if !errors.As(err, &perrs) {
				perrs = config.Errors{{Msg: err.Error(), Err: err}}
			}
			errs = append(errs, perrs...)
		}
	}
	s.reload.building = nil
	if len(errs) > 0 {
		if prod != nil {
			_ = prod.Close()
		}
		return fail(errs.Sorted())
	}
	if prod != nil {
		defer func() {
			if prod != nil { // not switched to: failed before
				_ = prod.Close()
			}
		}()
	}
	liveServers := s.servers.All()
	var added []string
	for _, key := range staging.Keys() {
		srv := staging.All()[key]
		if ls, ok := liveServers[key]; ok {
			if _, ok := ls.(component.Adopter); !ok {
				return fail(fmt.Errorf("%w: server %s takes no new sources while it runs", ErrNeedsRestart, key))
			}
			continue
		}
		if err := srv.Listen(); err != nil {
			return fail(fmt.Errorf("serve: %s: %w", key, err))
		}
		added = append(added, key)
	}

	// Start the new instances that take over while the old ones drain,
	// and the added ones: their sources run on the staging servers, which
	// nobody reaches yet.
	for _, n := range nexts {
		if n.overlap {
			if err := n.ch.Start(ctx); err != nil {
				n.ch = nil // Start failed: stopped
				return fail(err)
			}
		}
	}

	// A source runs its first handler asynchronously: the routes switch
	// once every new one has its handler, so none answers "not ready".
	for _, n := range nexts {
		if n.overlap {
			if err := waitSources(ctx, n.parts.sources); err != nil {
				return fail(err)
			}
		}
	}

	// Switch: routes move to the running servers at once, new servers
	// serve, the channel list and metrics change.
	for _, key := range staging.Keys() {
		srv := staging.All()[key]
		if ls, ok := liveServers[key]; ok {
			if err := ls.(component.Adopter).Adopt(srv); err != nil { // checked above; cannot fail for a server of its kind
				res.Warnings = append(res.Warnings, fmt.Sprintf("server %s: %v", key, err))
			}
			continue
		}
		s.servers.Add(key, srv)
		serveCtx := s.reload.serveCtx
		s.reload.wg.Go(func() {
			if err := srv.Serve(serveCtx); err != nil {
				s.log.Error("server failed", "server", key, "error", err)
			}
		})
	}
	s.reload.chMu.Lock()
	byName := map[string]*next{}
	for _, n := range nexts {
		byName[n.name] = n
	}
	var list []*channel.Channel
	for _, ch := range s.channels {
		if n, ok := byName[ch.Name()]; ok {
			list = append(list, n.ch)
			delete(byName, ch.Name())
			continue
		}
		if inNew[ch.Name()] {
			list = append(list, ch)
		}
	}
	for _, n := range nexts { // added, in the new configuration's order
		if _, ok := byName[n.name]; ok {
			list = append(list, n.ch)
		}
	}
	s.channels = list
	oldProd := s.production
	if prodChanged {
		s.production = prod
		prod = nil // switched to: closed by the server
	}
	for _, n := range nexts {
		s.reload.parts[n.ch] = n.parts
		gen.users++
		if n.openedSt {
			s.stores = append(s.stores, n.parts.store)
		}
	}
	s.reload.chMu.Unlock()
	for _, n := range nexts {
		if n.overlap {
			s.metrics.ReplaceChannel(n.old, n.ch)
		}
	}
	for _, ch := range removed {
		for _, src := range s.reload.parts[ch].sources {
			if d, ok := src.(component.Detacher); ok {
				d.Detach()
			}
		}
		s.metrics.ReplaceChannel(ch, nil)
	}
	s.reload.current.Store(&running{cfg: cfg, normal: norm, fp: norm.Fingerprint()})
	res.Fingerprint = norm.Fingerprint()
	oldGen := s.reload.gen
	s.reload.gen = gen
	s.providers = gen.providers
	s.log.Info("configuration applied", "fingerprint", res.Fingerprint, "backup", backup, "changes", len(changes), "servers_added", added)

	// Drain and stop the old instances; start those that wait for theirs.
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.Drain)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	warn := func(format string, args ...any) {
		mu.Lock()
		res.Warnings = append(res.Warnings, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	retire := func(old *channel.Channel, keepStore bool) {
		if err := old.Stop(drainCtx); err != nil {
			warn("%v", err)
		}
		mu.Lock()
		pt := s.reload.parts[old]
		mu.Unlock()
		if pt == nil {
			return
		}
		if !keepStore {
			s.closeStore(pt.store)
		}
		mu.Lock()
		delete(s.reload.parts, old)
		if pt.gen != nil {
			pt.gen.users--
			if pt.gen.users == 0 && pt.gen != gen {
				s.reload.old = slices.DeleteFunc(s.reload.old, func(g *generation) bool { return g == pt.gen })
				if pt.gen.providers != nil {
					if err := pt.gen.providers.Close(context.WithoutCancel(ctx)); err != nil {
						s.log.Warn("closing providers", "error", err)
					}
				}
			}
		}
		mu.Unlock()
	}
	if oldGen != nil && oldGen.users > 0 {
		s.reload.old = append(s.reload.old, oldGen)
	}
	if prodChanged {
		res.Production = "restarted"
		wg.Go(func() { s.restartProduction(ctx, drainCtx, oldProd, warn) })
	}
	for _, ch := range removed {
		wg.Go(func() { retire(ch, false) })
		res.Stopped = append(res.Stopped, ch.Name())
	}
	for _, n := range nexts {
		if n.old == nil {
			res.Started = append(res.Started, n.name)
			continue
		}
		res.Replaced = append(res.Replaced, n.name)
		wg.Go(func() {
			retire(n.old, n.shared)
			if !n.overlap {
				if err := n.ch.Start(context.WithoutCancel(ctx)); err != nil {
					warn("channel %q: the new instance did not start: %v", n.name, err)
					return
				}
				s.metrics.ReplaceChannel(n.old, n.ch)
				return
			}
			if n.shared {
				if _, err := n.ch.RecoverOwed(context.WithoutCancel(ctx)); err != nil {
					warn("%v", err)
				}
			}
		})
	}
	wg.Wait()
	if oldGen != nil && oldGen.users == 0 {
		s.reload.old = slices.DeleteFunc(s.reload.old, func(g *generation) bool { return g == oldGen })
		if oldGen.providers != nil && oldGen.providers != gen.providers {
			if err := oldGen.providers.Close(context.WithoutCancel(ctx)); err != nil {
				s.log.Warn("closing providers", "error", err)
			}
		}
	}
	return res, nil
}

// restartProduction stops the production an apply replaced (its
// messages in flight finish within the drain time), closes its stores,
// and starts the new one.
func (s *Server) restartProduction(ctx, drainCtx context.Context, old *production.Built, warn func(string, ...any)) {
	if old != nil {
		if err := old.Production.Stop(drainCtx); err != nil {
			warn("production: stop: %v", err)
		}
		for _, ch := range old.Production.Channels() {
			s.metrics.ReplaceChannel(ch, nil)
		}
		if err := old.Close(); err != nil {
			warn("production: %v", err)
		}
	}
	s.reload.chMu.RLock()
	prod := s.production
	s.reload.chMu.RUnlock()
	if prod == nil {
		return
	}
	if err := prod.Production.Start(context.WithoutCancel(ctx)); err != nil {
		warn("production: the new production did not start: %v", err)
		return
	}
	for _, ch := range prod.Production.Channels() {
		s.metrics.AddChannel(ch)
	}
}

// productionChanged reports whether the production: section, or a flow
// one of its components runs (or one such a flow calls), differs.
func productionChanged(a, b config.Normalized) bool {
	if !equalSection(a, b, "production") {
		return true
	}
	for _, entry := range b.Sections["production"] {
		flow := flowOf(entry)
		if flow == "" {
			continue
		}
		for _, f := range append(append([]string{flow}, a.Calls(flow)...), b.Calls(flow)...) {
			if a.Sections["flows"][f] != b.Sections["flows"][f] {
				return true
			}
		}
	}
	return false
}

// closeStore closes a store a retired channel used and forgets it.
func (s *Server) closeStore(st store.Store) {
	s.reload.chMu.Lock()
	s.stores = slices.DeleteFunc(s.stores, func(x store.Store) bool { return x == st })
	s.reload.chMu.Unlock()
	if err := st.Close(); err != nil {
		s.log.Warn("closing store", "error", err)
	}
}

// closeUnserved releases a server that was bound but never served.
func closeUnserved(srv component.Server) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if srv.Addr() != "" {
		_ = srv.Serve(ctx) // serves nothing: ctx is done; closes its listener
	}
}

// waitSources waits until each source that tells (Ready() bool: an HTTP
// route) takes messages, at most readyWait.
func waitSources(ctx context.Context, srcs []channel.Source) error {
	deadline := time.Now().Add(readyWait)
	for _, src := range srcs {
		r, ok := src.(interface{ Ready() bool })
		if !ok {
			continue
		}
		for !r.Ready() && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	}
	return nil
}

// allDetach reports whether every source holds a place in a shared
// server that a new instance's source can take over (HTTP routes).
func allDetach(srcs []channel.Source) bool {
	for _, s := range srcs {
		if _, ok := s.(component.Detacher); !ok {
			return false
		}
	}
	return true
}

func channelNames(chs []*channel.Channel) []string {
	var out []string
	for _, c := range chs {
		out = append(out, c.Name())
	}
	return out
}

func sectionsOf(a, b config.Normalized) map[string]bool {
	out := map[string]bool{}
	for k := range a.Sections {
		out[k] = true
	}
	for k := range b.Sections {
		out[k] = true
	}
	return out
}

func equalSection(a, b config.Normalized, sec string) bool {
	x, y := a.Sections[sec], b.Sections[sec]
	if len(x) != len(y) {
		return false
	}
	for k, v := range x {
		if w, ok := y[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// channelChanged reports whether the channel's entry, its flow or a flow
// it calls differs between a and b.
func channelChanged(name string, a, b config.Normalized) bool {
	ea, eb := a.Sections["channels"][name], b.Sections["channels"][name]
	if ea != eb {
		return true
	}
	flow := flowOf(eb)
	flows := append([]string{flow}, b.Calls(flow)...)
	flows = append(flows, a.Calls(flow)...)
	for _, f := range flows {
		if a.Sections["flows"][f] != b.Sections["flows"][f] {
			return true
		}
	}
	return false
}

// flowOf returns the flow a channel entry names.
func flowOf(entry string) string {
	var v struct {
		Flow string `yaml:"flow"`
	}
	_ = yaml.Unmarshal([]byte(entry), &v)
	return v.Flow
}
