package cli

import (
	"flag"
	"log/slog"

	"github.com/svcflow/svcflow/adapters/logging"
)

// logFlags are --log and --log-level.
type logFlags struct{ format, level *string }

func registerLogFlags(fs *flag.FlagSet) logFlags {
	return logFlags{
		format: fs.String("log", "text", "log format on standard error: text or json"),
		level:  fs.String("log-level", "info", "the least level logged: debug, info, warn or error"),
	}
}

// setup makes the logger the flags ask for the one every part of the
// command logs through (the log step included), and returns it; ok is
// false after a usage error, with the exit code.
func (lf logFlags) setup(e *Env, c *Command) (l *slog.Logger, code int, ok bool) {
	level, err := logging.ParseLevel(*lf.level)
	if err != nil {
		return nil, e.usageError(c, "--log-level: %v", err), false
	}
	if l, err = logging.New(e.Stderr, *lf.format, level); err != nil {
		return nil, e.usageError(c, "--log: %v", err), false
	}
	e.log = l
	return l, 0, true
}
