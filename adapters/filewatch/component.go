package filewatch

import (
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
)

// Spec is the configuration of a watched folder as a channel's source:
//
//	from: {files: {dir: inbox, glob: "*.json", done: inbox/done, failed: inbox/failed, settle: 1s, rescan: 5s}}
//	from: {files: inbox}       # the folder alone
//	from: {files: {dir: inbox, regex: '^order-[0-9]+\.csv$', trigger: .ok}}   # order-1.csv once order-1.ok appears
//	from: {files: {dir: config, glob: "*.yaml", mode: changes}}              # each file again whenever its content changes
//
// The folder is created when the channel starts, if needed.
type Spec struct {
	Dir         string        `yaml:"dir" spec:"required,scalar,path" doc:"the folder to watch, relative to the configuration file's folder (created at start if missing)"`
	Glob        string        `yaml:"glob" default:"*" doc:"take only files whose base name matches (path/filepath.Match syntax)"`
	Regex       string        `yaml:"regex" doc:"take only files whose base name also matches this regular expression (Go RE2 syntax, unanchored: use ^ and $)"`
	Mode        string        `yaml:"mode" default:"move" enum:"move,changes" doc:"move: each file once, then moved to done/ or failed/; changes: files stay and are taken again whenever their content changes"`
	Trigger     string        `yaml:"trigger" doc:"a suffix such as .ok: take data.csv only once data.ok (or data.csv.ok) exists, and remove that trigger file after"`
	Done        string        `yaml:"done" spec:"path" doc:"where finished files go (default: done/ under dir)"`
	Failed      string        `yaml:"failed" spec:"path" doc:"where failed files go, each beside a .error.txt (default: failed/ under dir)"`
	Settle      time.Duration `yaml:"settle" default:"1s" doc:"how long a file must stay unchanged before it is taken"`
	Rescan      time.Duration `yaml:"rescan" default:"5s" doc:"how often the folder is listed in full"`
	Concurrency int           `yaml:"concurrency" default:"1" doc:"how many files are handled at once"`
}

// Component is the files source component: a watched folder.
var Component = component.Source("files", "files dropped in a folder: one message per file, moved to done/ or failed/ after its run",
	func(env component.Env, s Spec) (channel.Source, error) {
		opts := []Option{WithLogger(env.Logger), WithCreateDir()}
		if s.Glob != "" {
			opts = append(opts, WithGlob(s.Glob))
		}
		if s.Regex != "" {
			opts = append(opts, WithRegex(s.Regex))
		}
		if s.Mode != "" {
			opts = append(opts, WithMode(Mode(s.Mode)))
		}
		if s.Trigger != "" {
			opts = append(opts, WithTrigger(s.Trigger))
		}
		if s.Done != "" {
			opts = append(opts, WithDoneDir(s.Done))
		}
		if s.Failed != "" {
			opts = append(opts, WithFailedDir(s.Failed))
		}
		if s.Settle != 0 {
			opts = append(opts, WithSettleDelay(s.Settle))
		}
		if s.Rescan != 0 {
			opts = append(opts, WithRescanInterval(s.Rescan))
		}
		if s.Concurrency != 0 {
			opts = append(opts, WithConcurrency(s.Concurrency))
		}
		return New(s.Dir, opts...)
	})

func init() { component.Register(Component) }
