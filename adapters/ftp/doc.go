// Package ftp is a channel source that watches a folder of an FTP server:
// each file whose name matches becomes one message, and once handled it
// is deleted, moved to another folder, or kept, as configured.
//
//	src, err := ftp.New(ftp.Spec{
//		Address:  "ftp.example.com:21",
//		User:     "orders",
//		Password: os.Getenv("FTP_PASSWORD"),
//		Folder:   "/outgoing",
//		Regex:    `^order-\d+\.json$`,
//		After:    ftp.AfterMove, // to MoveTo, default "done" under Folder
//	})
//
// In YAML it is the ftp source of a channel:
//
//	from: {ftp: {address: "ftp.example.com:21", user: orders, password: "${FTP_PASSWORD}", folder: /outgoing, regex: '^order-\d+\.json$', after: move}}
//
// # The client
//
// The FTP client is github.com/jlaffaye/ftp: pure Go (no cgo), maintained,
// the most used Go FTP client; it speaks passive mode (EPSV, PASV), MLSD
// listings with LIST as fallback, and explicit TLS (AUTH TLS). The
// source uses one control connection, from one goroutine.
//
// # Which files, and when
//
// Every Every (default 30s) the source lists Folder and takes the regular
// files whose base name matches Regex (Go regexp syntax, matched anywhere
// in the name unless anchored) and Glob (path.Match syntax; default "*"),
// at most MaxFiles (default 100) per poll, in the order of their names.
// A file larger than MaxSize (default 64 MiB) is skipped with an error in
// the log. Each file is downloaded whole into memory; a download that
// fails or ends short of the listed size (the connection dropped) is
// tried again on a new connection, with a backoff (100ms doubling to 5s,
// Retries attempts in all, default 5), then left for the next poll:
// nothing is handed over half read, and nothing is lost.
//
// # Messages
//
// The payload is the file's content; the content type comes from the
// extension (.json application/json, .xml application/xml, .csv text/csv,
// .txt text/plain), else text/plain for UTF-8 content and
// application/octet-stream for the rest. Meta holds MetaName, MetaPath,
// MetaSize, MetaModTime and MetaAddress. The ID is derived from the
// file's path, size and modification time as the server lists them
// (FileID), so the file seen again, after a restart or because it was
// kept, is the same message: the channel answers it from its store and
// does not run it again. A file replaced by another of the same path,
// size and modification time (to the precision the server lists) is taken
// for the same file.
//
// # Settling
//
//	done      After: delete (the default) deletes the file; move renames
//	          it into MoveTo (a file of that name there is replaced where
//	          the server allows it); keep leaves it, and it is not taken
//	          again while the source runs (after a restart the store
//	          answers it without running it)
//	rejected  (a Stop: the flow refused the content on purpose) moved to
//	          Failed when set, else treated as done
//	failed    moved to Failed when set, else left in place and tried again
//	          when the source next starts
//	nack      left in place, handed over again at the first poll after
//	          the result's RetryAfter
//	leave     left in place, handed over again at the next poll
//
// A delete or move that fails (the connection dropped) is tried again on
// a new connection; if it still fails, the file is seen again at the next
// poll, answered from the store as a duplicate and settled then.
//
// # Connections
//
// The first connection is made by Connect, or by Run when Connect was not
// called; when it fails (a wrong address, refused credentials, a missing
// folder), Run returns the error, which names the address. flowrun serve
// connects every ftp source before its channels start, so a bad address
// stops serve at once. Once connected, a lost connection is made again
// with a backoff (100ms doubling to 5s) as long as Run runs. Timeout
// bounds the dial and each read or write on the control and data
// connections (a server that stops answering).
package ftp
