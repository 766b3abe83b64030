// Package filewatch is a channel source that takes the files put in a
// folder: each file becomes one message, and once handled it is moved to a
// done folder or, with an error report, to a failed folder.
//
//	src, err := filewatch.New("/var/spool/orders", filewatch.WithGlob("*.json"))
//
// # Which files, and when
//
// The source takes the regular files directly in the folder whose name
// matches the glob (default "*") and, when one is set (WithRegex, `regex:`),
// the regular expression (Go RE2 syntax, unanchored); names that begin with a dot, symbolic
// links and sub-folders are ignored, so the done and failed folders, which
// are created under the watched folder by default, are never taken.
//
// It learns about files three ways: a full listing when Run starts (files
// that arrived while it was stopped), change notifications from the
// operating system, and a full listing every rescan interval (default 5s)
// in case notifications were missed or overflowed.
//
// A file is taken only when it is stable: its size and modification time
// are unchanged across two looks one settle delay apart (default 1s). A file
// still being written therefore waits until its writer has paused for the
// settle delay; a writer that may pause longer should write under a
// dot-name (".order.json") or in another folder on the same file system
// and rename the finished file into the watched folder, which is atomic.
// A renamed-in file is complete at once but still waits one settle delay.
// If a file changes between being found stable and being read, it goes back
// to waiting.
//
// With a trigger suffix (WithTrigger, `trigger: .ok`) a stable data file
// also waits for its trigger file: "data.csv" is taken once "data.ok" (or
// "data.csv.ok") exists, and the trigger file is removed once the data
// file is settled. Files ending with the suffix are never taken as data.
//
// # Modes
//
// In ModeMove (the default) a handled file leaves the folder (below). In
// ModeChanges (`mode: changes`) it stays, and is taken again each time its
// content changes: the watcher keeps the SHA-256 of the content it last
// handled, and a file touched or rewritten with that same content is not
// taken. The message ID (FileID) follows the content, so after a restart
// a channel answers an unchanged file from its store without running it,
// and a file changed back to a content already handled is answered so
// too. A failed or rejected file stays in place as well, with its error
// report written to the failed folder as "<name>.error.txt"; the done
// folder is not used.
//
// # Messages
//
// The payload is the file's content; the content type comes from the
// extension (.json application/json, .xml application/xml, .csv text/csv,
// .txt and .log text/plain), else text/plain for UTF-8 content and
// application/octet-stream for the rest (WithContentType overrides all of
// this). Meta holds MetaName, MetaPath, MetaSize and MetaModTime. The ID is
// derived from the name and a hash of the content (FileID): the same file
// offered again, after a restart or dropped twice, has the same ID (a
// channel answers it from its store and does not run it again), and a file
// with other content has another, even with the same size and
// modification time.
//
// # Settling
//
//	Ack    moved to the done folder; a rejected file (State "rejected":
//	       the flow stopped on purpose, e.g. invalid content) is moved
//	       to the failed folder with its error report, like Fail
//	Fail   moved to the failed folder, with "<name>.error.txt" beside it
//	       holding the error text, error id, message id and time
//	Nack   left in place and handed over again after Result.RetryAfter
//	       (the settle delay when zero)
//	Leave  left in place and not handed over again until the next Run
//
// On a name clash in the done or failed folder the moved file is renamed
// "<base>-1<ext>", "<base>-2<ext>" and so on. The folders may be on
// another file system than the watched one (the file is then copied and
// deleted, which is not atomic).
//
// A file is never handed to the handler twice at once, and never after it
// was moved: all bookkeeping happens on Run's goroutine. Files are handled
// one at a time by default, in the order they became stable;
// WithConcurrency allows more.
package filewatch
