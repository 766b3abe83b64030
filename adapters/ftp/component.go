package ftp

import (
	"context"
	"fmt"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
)

// Component is the ftp source component: a folder of an FTP server
// watched (see [Spec]).
//
//	from: {ftp: {address: "ftp.example.com:21", user: orders, password: "${FTP_PASSWORD}", folder: /outgoing, regex: '\.json$', after: move}}
//	from: {ftp: "ftp.example.com:21"}   # anonymous, the root folder, files deleted once done
var Component = component.Source("ftp", "a folder of an FTP server polled: one message per file, deleted, moved or kept once done; each file processed once across restarts",
	func(env component.Env, s Spec) (channel.Source, error) {
		opts := []Option{WithLogger(env.Log())}
		if env.Name != "" {
			opts = append(opts, WithName("ftp "+env.Name))
		}
		src, err := New(s, opts...)
		if err != nil {
			return nil, err
		}
		// serve connects the ftp sources before the channels start, so a
		// wrong address or password stops it at once.
		key := "ftp " + env.Name + " " + src.spec.Address + src.spec.Folder
		srv, err := env.Server(key, func() (component.Server, error) { return &server{src: src}, nil })
		if err != nil {
			return nil, err
		}
		if sv, ok := srv.(*server); !ok || sv.src != src {
			return nil, fmt.Errorf("ftp: channel %q watches %s%s twice", env.Name, src.spec.Address, src.spec.Folder)
		}
		return src, nil
	})

func init() { component.Register(Component) }

// server is a source as a component.Server: Listen makes its first
// connection.
type server struct{ src *Source }

func (s *server) Listen() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.src.spec.Timeout)
	defer cancel()
	return s.src.Connect(ctx)
}
func (s *server) Addr() string                        { return s.src.Addr() }
func (s *server) Serve(ctx context.Context) error     { <-ctx.Done(); return nil }
func (s *server) Ready() bool                         { return true }
func (s *server) WaitReady(ctx context.Context) error { return nil }
