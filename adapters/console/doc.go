// Package console is the web console of a running flowrun: pages to see
// and steer its channels in a browser, and the JSON API under /api/ that
// the pages use and scripts can call. `flowrun serve` mounts it on the
// admin address (loopback by default): open http://127.0.0.1:9090/.
//
// The pages are plain HTML, CSS and JavaScript embedded in the binary
// (nothing is fetched from elsewhere): channels, message search, a
// message (payload, meta, context, history of states, journal of a
// durable run), its trace as a timeline, the flow's graph, and the
// actions. Counts and the message list update live.
//
// # Authorization
//
// The admin token (Options.Token; flowrun serve gives its own: the
// content of --admin-token-file, or FLOWRUN_ADMIN_TOKEN) is sent as
// "Authorization: Bearer TOKEN"; the
// pages ask for it on their Token page, keep it in the tab's
// sessionStorage and send it as that header (no cookie, so another web
// site cannot act through the browser).
//   - Actions (POST) need the token, always; without one set they are
//     refused with 403, with a wrong or missing one with 401.
//   - Reads need it when the console is served on an address that is not
//     loopback (Options.Addr): 401 without it, 403 when no token is set.
//     On a loopback address reads are open to requests whose Host is a
//     loopback address or localhost (another name is refused with 403:
//     DNS rebinding).
//
// # API
//
// Every answer is JSON; an error is {"error": "..."} with status 400 (a
// bad parameter, named), 401, 403, 404 (an unknown channel, message or
// step), 409 (a signal to a message that does not wait for it) or 500.
//
//	GET  /api/channels                        the channels: []ChannelInfo
//	GET  /api/channels/{channel}              one ChannelInfo
//	GET  /api/channels/{channel}/messages     search: SearchResult
//	GET  /api/channels/{channel}/messages/{id}        MessageDetail
//	GET  /api/channels/{channel}/messages/{id}/trace  TraceView
//	GET  /api/channels/{channel}/graph        the flow's graph laid out: Layout
//	GET  /api/channels/{channel}/graph.svg    the same drawn as SVG
//	GET  /api/auth                            {"token_set", "authorized", "reads_need_token"}
//	POST /api/channels/{channel}/messages/{id}/replay             ActionResult
//	POST /api/channels/{channel}/messages/{id}/signals/{signal}   ActionResult
//	POST /api/channels/{channel}/replay       bulk replay: BulkResult
//	GET  /api/events                          server-sent events "channels"
//	GET  /api/channels/{channel}/messages/events   server-sent events "messages"
//
// A ChannelInfo has the channel's name, flow, state (running, ...),
// sources, in_flight, owed (messages a previous process left unfinished,
// running again), waiting, counts (stored messages by state: pending,
// processing, done, rejected, error, dead, waiting), outcomes (what this
// process did: done, rejected, error, left, duplicate, waiting),
// last_error, store_error and restarts.
//
// The search takes URL parameters (see [ParseQuery]): state (repeated or
// comma-separated), since and until (RFC 3339; until is exclusive),
// meta=KEY=VALUE (repeated: every pair must match), id (text the ID
// contains, case-sensitive), limit (default 50, at most 500), offset and
// order (desc, newest first, the default; or asc). It answers
// {"total", "offset", "limit", "messages": [{"id", "time", "state",
// "outcome", "reason", "error", "attempts", "updated", "meta"}]}.
//
//	curl 'http://127.0.0.1:9090/api/channels/orders/messages?state=error,dead&meta=customer=c-42&limit=20'
//
// A message (MessageDetail) is the stored record as `flowrun messages
// show` prints it (message with payload, meta, context and trace; state,
// outcome, reason, err, attempts, updated, history) plus journal (the
// completed steps of a durable run, with their writes), wait (what a
// waiting message waits for) and steps (the flow's step names). Its trace
// (TraceView) is {"id", "state", "trace"}, the flow.Trace of its latest
// run (404 when none was recorded).
//
// Actions run to the end even if the client goes away. A replay's body is
// optional: {} runs the message again (Channel.Replay), {"from": "STEP"}
// from a step on the stored context (Channel.ReplayFrom; an unknown step
// is 400), {"resume": true} after its journaled steps (Channel.Resume).
// A signal's body is the JSON object of the signal's values
// (Channel.Signal). They answer {"id", "state", "outcome", "error",
// "context"}. A bulk replay's body is {"state": "dead" or "error",
// "since", "until", "limit"} (limit default 100, at most 1000): it
// replays the messages in that state, oldest first, and answers
// {"replayed", "results": [...], "more"}.
//
//	curl -X POST -H "Authorization: Bearer $FLOWRUN_ADMIN_TOKEN" -d '{"state":"dead"}' http://127.0.0.1:9090/api/channels/orders/replay
//
// # Live updates
//
// GET /api/events is a stream of server-sent events: "channels", whose
// data is the channel list of GET /api/channels, sent at once and then
// each time it changes (looked for every Options.Interval, and at once
// after an action). GET /api/channels/{channel}/messages/events takes the
// search's parameters and sends "messages" events, each a search answer,
// at once and then each time it changes. (So a message whose ID is
// "events" has no GET .../messages/{id}: find it with the search's id
// parameter.)
//
// A slow browser does not slow the server: each stream holds at most one
// update not yet sent; a newer one replaces it (the browser gets the
// latest, never a backlog), the update loop never waits for a stream, and
// a stream whose update could not be written for Options.WriteTimeout (a
// browser that stopped reading) is ended.
// A message list is searched again only as fast as its browser reads.
package console
