// Package cron is a channel source that produces one message per tick of a
// cron schedule, like a timer that starts a flow.
//
//	src, err := cron.New("@every 5m")          // or "30 2 * * 1-5", "@hourly"
//	src, err = cron.New("*/10 * * * * *", cron.WithSeconds())
//
// Specs are parsed by github.com/robfig/cron/v3: five fields (minute, hour,
// day of month, month, day of week), an optional leading seconds field
// with WithSeconds, the descriptors @yearly, @monthly, @weekly, @daily,
// @hourly and "@every <duration>", and an optional "CRON_TZ=<zone> " prefix.
//
// # Messages
//
// Each tick's message has the JSON payload
//
//	{"tick":"2024-05-01T02:30:00Z","schedule":"30 2 * * 1-5"}
//
// where tick is the scheduled time in UTC (not the moment the timer fired),
// the same two facts in meta (MetaTick, MetaSpec), the tick time as the
// message's Time, and an ID derived from the spec and the tick time
// (TickID), so a tick that is replayed or redelivered is recognizably the
// same message.
//
// # Overlap
//
// A tick is handled on its own goroutine. By default a tick that comes
// while the previous one is still being handled is skipped and logged,
// so a slow flow never runs twice at once; WithOverlap lets ticks run
// side by side.
//
// # Time
//
// The source waits with ordinary timers and reads time.Now, so tests can
// drive it with testing/synctest and a fake clock.
package cron
