package steps

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/svcflow/svcflow/adapters/component"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// LogSpec is the spec of a log step: a message logged to the logger the
// step is built with (its component.Env's; config.WithLogger), with the
// step's name and the keys listed as attributes.
//
//	log: "order {{.id}} priced"
//	log: {message: "order {{.id}} priced", level: debug, keys: [total]}
//
// The step needs the keys its message and attributes read.
type LogSpec struct {
	Message component.Template `yaml:"message" spec:"required,scalar" doc:"the message, a template over the context"`
	Level   string             `yaml:"level" default:"info" enum:"debug,info,warn,error" doc:"the level"`
	Keys    []component.Key    `yaml:"keys" doc:"keys logged as attributes"`
}

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

func newLog(env component.Env, s LogSpec) (flow.Service, error) {
	level, ok := logLevels[s.Level]
	if s.Level == "" {
		level, ok = slog.LevelInfo, true
	}
	if !ok {
		return nil, component.FieldErrorf("level", "expected debug, info, warn or error, got %q", s.Level)
	}
	keys := make([]string, len(s.Keys))
	for i, k := range s.Keys {
		keys[i] = string(k)
	}
	return &logService{name: env.Name, logger: env.Log(), level: level, msg: s.Message, keys: keys,
		contract: flow.Contract{Needs: needsOf(append(s.Message.Keys(), keys...))}}, nil
}

// logService logs a message with keys as attributes.
type logService struct {
	name     string
	logger   *slog.Logger
	level    slog.Level
	msg      component.Template
	keys     []string
	contract flow.Contract
}

func (s *logService) Name() string            { return s.name }
func (s *logService) Contract() flow.Contract { return s.contract }

func (s *logService) Call(ctx context.Context, c *fc.Context) error {
	if !s.logger.Enabled(ctx, s.level) {
		return nil
	}
	msg, err := s.msg.Execute(c.View())
	if err != nil {
		return fmt.Errorf("log message: %w", err)
	}
	attrs := make([]slog.Attr, 0, len(s.keys)+1)
	attrs = append(attrs, slog.String("step", s.name))
	for _, k := range s.keys {
		v, _ := c.Get(k)
		attrs = append(attrs, slog.Any(k, v))
	}
	s.logger.LogAttrs(ctx, s.level, msg, attrs...)
	return nil
}
