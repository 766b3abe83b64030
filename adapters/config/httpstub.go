package config

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	yaml "go.yaml.in/yaml/v4"
)

// httpService is the HTTP service a test suite declares (http_service:):
// a server on a free loopback port, started for each case of the suite
// and stopped after it, whose URL the var named Var holds while the case
// runs. It answers each "METHOD /path" route with its answers, one per
// request, the last one repeated; other requests get the default answer
// (404 by default).
type httpService struct {
	Var     string
	routes  map[string][]stubAnswer // "GET /customers/c-1" or "/path" (any method)
	deflt   stubAnswer
	varsRef *varOverrides
}

// stubAnswer is one answer of a stub route.
type stubAnswer struct {
	Status  int
	Headers map[string]string
	Body    []byte
}

var (
	httpServiceKeys = []string{"var", "routes", "default"}
	answerKeys      = []string{"status", "headers", "json", "body"}
)

// parseHTTPService reads a suite's http_service.
func (l *loader) parseHTTPService(f *srcFile, n *yaml.Node) (*httpService, bool) {
	fs, ok := l.mapping(f, n, "tests: http_service", httpServiceKeys)
	if !ok {
		return nil, false
	}
	good := fs.unknown == 0
	svc := &httpService{routes: map[string][]stubAnswer{}, deflt: stubAnswer{Status: http.StatusNotFound, Body: []byte(`{"error": "not found"}`),
		Headers: map[string]string{"Content-Type": "application/json"}}, varsRef: l.overrides}
	if fd, ok := fs.get("var"); !ok {
		l.at(f, n, "tests: http_service: missing var (the var that gets the service's URL, as {{var \"NAME\"}} reads it)")
		good = false
	} else if svc.Var, ok = l.name(f, fd.val, "tests: http_service: var"); !ok {
		good = false
	} else if _, declared := l.vars[svc.Var]; !declared {
		l.at(f, fd.val, "tests: http_service: var %q is not declared in vars: declare it with the URL used outside tests", svc.Var)
		good = false
	}
	if fd, ok := fs.get("routes"); ok {
		rs, ok := l.mapping(f, fd.val, "tests: http_service: routes", nil)
		if !ok {
			good = false
		} else {
			for _, key := range rs.order {
				r := rs.m[key]
				method, path, hasMethod := strings.Cut(key, " ")
				if !hasMethod {
					method, path = "", key
				}
				if !strings.HasPrefix(path, "/") || method != "" && method != strings.ToUpper(method) {
					l.at(f, r.key, "tests: http_service: route %q: expected \"METHOD /path\" or \"/path\"", key)
					good = false
					continue
				}
				var answers []stubAnswer
				if node := f.deref(r.val); node != nil && node.Kind == yaml.SequenceNode {
					items, _ := l.seq(f, node, "tests: http_service: route "+key)
					if len(items) == 0 {
						l.at(f, node, "tests: http_service: route %q: expected at least one answer", key)
						good = false
					}
					for _, it := range items {
						a, ok := l.parseAnswer(f, it, "tests: http_service: route "+key)
						good = good && ok
						answers = append(answers, a)
					}
				} else {
					a, ok := l.parseAnswer(f, r.val, "tests: http_service: route "+key)
					good = good && ok
					answers = append(answers, a)
				}
				svc.routes[method+" "+path] = answers
			}
		}
	}
	if fd, ok := fs.get("default"); ok {
		a, ok := l.parseAnswer(f, fd.val, "tests: http_service: default")
		good = good && ok
		svc.deflt = a
	}
	return svc, good
}

// parseAnswer reads one answer: {status, headers, json | body}.
func (l *loader) parseAnswer(f *srcFile, n *yaml.Node, what string) (stubAnswer, bool) {
	a := stubAnswer{Status: http.StatusOK, Headers: map[string]string{}}
	fs, ok := l.mapping(f, n, what, answerKeys)
	if !ok {
		return a, false
	}
	good := fs.unknown == 0
	if fd, ok := fs.get("status"); ok {
		if a.Status, ok = l.integer(f, fd.val, what+": status", 100, 599); !ok {
			good = false
		}
	}
	if fd, ok := fs.get("headers"); ok {
		if hs, ok := l.mapping(f, fd.val, what+": headers", nil); ok {
			for _, k := range hs.order {
				v, ok := l.str(f, hs.m[k].val, what+": headers: "+k)
				good = good && ok
				a.Headers[k] = v
			}
		} else {
			good = false
		}
	}
	jd, hasJSON := fs.get("json")
	bd, hasBody := fs.get("body")
	switch {
	case hasJSON && hasBody:
		l.at(f, bd.key, "%s: give json or body, not both", what)
		good = false
	case hasJSON:
		v, ok := l.value(f, jd.val, what+": json")
		if ok {
			data, err := json.Marshal(v)
			if err != nil {
				l.at(f, jd.val, "%s: json: %v", what, err)
				good = false
			}
			a.Body = data
			if _, set := a.Headers["Content-Type"]; !set {
				a.Headers["Content-Type"] = "application/json"
			}
		} else {
			good = false
		}
	case hasBody:
		s, ok := l.str(f, bd.val, what+": body")
		good = good && ok
		a.Body = []byte(s)
	}
	return a, good
}

// start starts the service and makes its var hold its URL; stop undoes
// both.
func (s *httpService) start() (stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("http_service: %w", err)
	}
	var mu sync.Mutex
	served := map[string]int{}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.Path
		answers, ok := s.routes[key]
		if !ok {
			key = " " + r.URL.Path
			answers, ok = s.routes[key]
		}
		a := s.deflt
		if ok {
			mu.Lock()
			i := min(served[key], len(answers)-1)
			served[key]++
			mu.Unlock()
			a = answers[i]
		}
		for k, v := range a.Headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.Status)
		_, _ = w.Write(a.Body)
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	release := s.varsRef.set(s.Var, "http://"+ln.Addr().String())
	return func() {
		release()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
		<-done
	}, nil
}

// varOverrides are values that replace vars while a test case runs (its
// http_service's URL). Templates read them first.
type varOverrides struct {
	mu sync.RWMutex
	m  map[string]any
}

// set makes name read v until release is called.
func (o *varOverrides) set(name string, v any) (release func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]any{}
	}
	prev, had := o.m[name]
	o.m[name] = v
	return func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		if had {
			o.m[name] = prev
		} else {
			delete(o.m, name)
		}
	}
}

func (o *varOverrides) get(name string) (any, bool) {
	if o == nil {
		return nil, false
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	v, ok := o.m[name]
	return v, ok
}
