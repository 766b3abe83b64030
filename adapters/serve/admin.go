package serve

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/svcflow/svcflow/adapters/config"
)

// ErrAdminNotLoopback is wrapped by the error of [Server.Listen] for an
// admin address that other machines can reach (not 127.0.0.1, ::1 or
// localhost) while Options.AdminToken is empty: its endpoints that change
// something would be open to the network.
var ErrAdminNotLoopback = errors.New("the admin address is not loopback and no admin token is set")

// checkAdminAddr refuses a non-loopback admin address without a token.
func (s *Server) checkAdminAddr() error {
	if s.opts.AdminToken != "" || isLoopback(s.opts.Admin) {
		return nil
	}
	return fmt.Errorf("serve: admin %s: %w: set a token (flowrun serve --admin-token-file, Options.AdminToken) or listen on 127.0.0.1", s.opts.Admin, ErrAdminNotLoopback)
}

// isLoopback reports whether the host of addr is a loopback address or
// localhost (an empty host listens on every interface: not loopback).
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// requireAdmin is the one check of the admin token: it wraps h so that
// it answers only requests carrying "Authorization: Bearer TOKEN" with
// Options.AdminToken (compared in constant time), and 401 with
// WWW-Authenticate: Bearer and a JSON error otherwise. Every admin
// endpoint that changes something (signal, apply, rollback, and the web
// console's /api/ actions) or shows the configuration goes through it.
// With no token set (allowed only on a loopback admin address, see
// [Server.Listen]) h is reached without one.
func (s *Server) requireAdmin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := s.opts.AdminToken; tok != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(tok)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="flowrun admin"`)
				writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "admin token required (Authorization: Bearer TOKEN)"})
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// TokenFileMode is the mode of an admin token file [LoadOrCreateToken]
// writes: readable by its owner only.
const TokenFileMode fs.FileMode = 0o600

// LoadOrCreateToken returns the admin token kept in the file at path:
// its content without surrounding white space. When the file does not
// exist it is created (with its folder) holding a new random token (32
// bytes from crypto/rand, hex), with mode 0600. A file that exists but is
// empty is an error, as is one that others may read (a mode beyond
// 0600): fix its mode (chmod 600) or remove it.
func LoadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if fi, serr := os.Stat(path); serr == nil && fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("admin token file %s: mode %04o lets others read it: chmod 600 it", path, fi.Mode().Perm())
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("admin token file %s: empty", path)
		}
		return tok, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("admin token file: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("admin token file %s: %w", path, err)
	}
	tok := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, TokenFileMode)
	if errors.Is(err, fs.ErrExist) { // another process made it meanwhile
		return LoadOrCreateToken(path)
	}
	if err != nil {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	_, werr := f.WriteString(tok + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("admin token file %s: %w", path, err)
	}
	return tok, nil
}

// ReadToken returns the admin token in the file at path (a client's
// side of LoadOrCreateToken: nothing is created).
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("admin token file %s: empty", path)
	}
	return tok, nil
}

// maxPlanBody bounds the body of POST /apply and /rollback.
const maxPlanBody = 32 << 20

// adminRoutes adds the configuration endpoints to the admin API:
//
//	GET  /config     the running configuration: RunningConfig (token required)
//	POST /apply      {"plan": Plan, "allow_destructive": false} -> ApplyResult
//	POST /rollback   {"backup": "NAME or path in DATA/backups"} -> ApplyResult
//
// Apply answers 409 for a plan made against another configuration
// (ErrStalePlan) or while another apply runs, 422 for destructive changes
// without allow_destructive (ErrDestructive), for a configuration with
// problems (its errors at file:line:col under "errors") and for a change
// that needs a restart (ErrNeedsRestart), 400 for a body that is not a
// plan.
func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.Handle("GET /config", s.requireAdmin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.RunningConfig())
	})))
	mux.Handle("POST /apply", s.requireAdmin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Plan             *Plan `json:"plan"`
			AllowDestructive bool  `json:"allow_destructive"`
		}
		if !readBody(w, r, &req) {
			return
		}
		if req.Plan == nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": `expected {"plan": PLAN, "allow_destructive": false}`})
			return
		}
		// A client that hangs up does not stop an apply halfway.
		res, err := s.Apply(context.WithoutCancel(r.Context()), req.Plan, ApplyOptions{AllowDestructive: req.AllowDestructive})
		writeApply(w, res, err)
	})))
	mux.Handle("POST /rollback", s.requireAdmin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Backup string `json:"backup"`
		}
		if !readBody(w, r, &req) {
			return
		}
		res, err := s.Rollback(context.WithoutCancel(r.Context()), req.Backup)
		writeApply(w, res, err)
	})))
}

func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPlanBody))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "read body: " + err.Error()})
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "the body is not JSON of the expected shape: " + err.Error()})
		return false
	}
	return true
}

// writeApply answers an apply or a rollback.
func writeApply(w http.ResponseWriter, res *ApplyResult, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, res)
		return
	}
	body := map[string]any{"error": err.Error()}
	code := http.StatusInternalServerError
	var de *DestructiveError
	var cerrs config.Errors
	switch {
	case errors.As(err, &de):
		code = http.StatusUnprocessableEntity
		body["destructive"] = de.Changes
	case errors.Is(err, ErrStalePlan), errors.Is(err, ErrApplying):
		code = http.StatusConflict
	case errors.As(err, &cerrs):
		code = http.StatusUnprocessableEntity
		var list []string
		for _, e := range cerrs {
			list = append(list, e.Error())
		}
		body["errors"] = list
	case errors.Is(err, ErrNeedsRestart), errors.Is(err, ErrInvalidPlan):
		code = http.StatusUnprocessableEntity
	case errors.Is(err, ErrNoBackup):
		code = http.StatusNotFound
	case errors.Is(err, ErrNotRunning):
		code = http.StatusServiceUnavailable
	}
	if res != nil && res.Backup != "" {
		body["backup"] = res.Backup
	}
	writeJSON(w, code, body)
}
