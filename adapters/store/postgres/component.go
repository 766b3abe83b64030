package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/store"
)

// Spec is the configuration of a PostgreSQL store:
//
//	store: postgres://user:password@db.example:5432/flows
//	store: {postgres: {url: "postgres://user@db.example/flows", table: orders}}
//
// A URL written as the store itself (postgres://...) is the spec's url.
type Spec struct {
	URL          string        `yaml:"url" spec:"required,scalar" doc:"the server to connect to: postgres://user:password@host:port/database (or a key=value connection string)"`
	Table        string        `yaml:"table" doc:"the prefix of the store's tables, TABLE_messages and TABLE_history (default: the channel's name); the workers that share a channel's messages use the same"`
	MaxConns     int           `yaml:"max_conns" doc:"the most connections to the server (default: 4, or the number of CPUs if more)"`
	ConnectLimit time.Duration `yaml:"connect_timeout" default:"10s" doc:"bound on connecting and creating the tables when the store opens"`
}

// Component is the postgres store component.
var Component = component.Store("postgres", "messages in PostgreSQL tables: one store shared by many workers, on one machine or many",
	func(env component.Env, s Spec) (component.StoreOpener, error) {
		url := s.URL
		if strings.HasPrefix(url, "//") {
			url = "postgres:" + url // written as postgres://...
		}
		if url == "" {
			return nil, fmt.Errorf("empty url: %w", component.ErrInvalid)
		}
		if s.MaxConns < 0 {
			return nil, fmt.Errorf("negative max_conns: %w", component.ErrInvalid)
		}
		opts := Options{Table: s.Table, MaxConns: int32(s.MaxConns)}
		if opts.Table == "" {
			opts.Table = env.Name
		}
		if err := checkURL(url); err != nil {
			return nil, fmt.Errorf("%w: %w", component.ErrInvalid, err)
		}
		limit := s.ConnectLimit
		if limit <= 0 {
			limit = 10 * time.Second
		}
		return func() (store.Store, error) {
			ctx, cancel := context.WithTimeout(context.Background(), limit)
			defer cancel()
			st, err := Open(ctx, url, opts)
			if err != nil {
				return nil, err // not a nil *Store in the interface
			}
			return st, nil
		}, nil
	})

func init() { component.Register(Component) }
