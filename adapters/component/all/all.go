// Package all registers every component shipped with svcflow in
// [component.Default]: the http, cron, files, poll, ftp, mllp and nats sources, the
// memory, file and sqlite stores, the built-in step kinds of YAML flows
// (set, stop, log, template, http, sleep, shell: adapters/steps), the
// nats publish step and the nats sink (adapters/nats), the mllp step
// (adapters/mllp), the bus's submit
// and request steps (adapters/bus), the cache provider
// (adapters/cache) and the kv provider with the save and restore steps
// (adapters/kv) and its nats backend (adapters/kv/natskv). Import it
// for its side effect, as cmd/flowrun does:
//
//	import _ "github.com/svcflow/svcflow/adapters/component/all"
//
// A program that wants fewer imports the component packages it needs
// instead (a build without adapters/store/sqlite links no SQLite).
package all

import (
	_ "github.com/svcflow/svcflow/adapters/bus"
	_ "github.com/svcflow/svcflow/adapters/cache"
	_ "github.com/svcflow/svcflow/adapters/cron"
	_ "github.com/svcflow/svcflow/adapters/filewatch"
	_ "github.com/svcflow/svcflow/adapters/ftp"
	_ "github.com/svcflow/svcflow/adapters/httpsource"
	_ "github.com/svcflow/svcflow/adapters/kv"
	_ "github.com/svcflow/svcflow/adapters/kv/natskv"
	_ "github.com/svcflow/svcflow/adapters/mllp"
	_ "github.com/svcflow/svcflow/adapters/nats"
	_ "github.com/svcflow/svcflow/adapters/poll"
	_ "github.com/svcflow/svcflow/adapters/production"
	_ "github.com/svcflow/svcflow/adapters/steps"
	_ "github.com/svcflow/svcflow/adapters/store/file"
	_ "github.com/svcflow/svcflow/adapters/store/postgres"
	_ "github.com/svcflow/svcflow/adapters/store/sqlite"
)
