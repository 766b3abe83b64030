package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func init() {
	register(&Command{
		Name:    "publish",
		Summary: "publish the records of a JSONL file to a JetStream subject",
		Usage:   "flowrun publish FILE.jsonl|- --subject S [--url U] [--id FIELD] [--progress auto|bar|lines|none]",
		Help: `Publishes each line of FILE (- reads standard input) as one message to
the subject, and waits for the stream's acknowledgements. Each message
has an id (the Nats-Msg-Id header), which a nats source gives the
channel's messages and the stream deduplicates by: the value of the
record's --id field, or, without --id, a UUID made of the file's line
number and the line, so publishing the same file again is deduplicated
within the stream's duplicate window. Blank lines are skipped; a line
that is not JSON, or has no --id field, is reported with its number and
not published. A progress bar (a line per tenth when standard error is
not a terminal) and a summary go to standard error. Exit code 1 when a
record was not published.`,
		Example: `flowrun publish orders.jsonl --subject orders.new --id order_id
cat orders.jsonl | flowrun publish - --subject orders.new --url nats://10.0.0.5:4222`,
		Run: publishCmd,
	})
}

func publishCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["publish"]
	fs := e.FlagSet(c)
	subject := fs.String("subject", "", "the subject to publish to (required)")
	url := fs.String("url", "nats://127.0.0.1:4222", "the NATS server URLs, comma-separated (a flowrun serve's embedded server listens on 127.0.0.1:4222 by default)")
	idField := fs.String("id", "", "the record field whose value is the message id (default: a UUID of the line number and the line)")
	mode := fs.String("progress", "auto", "progress on standard error: auto (a bar on a terminal, else lines), bar, lines or none")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the server and for each acknowledgement")
	pos, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	switch {
	case len(pos) != 1:
		return e.usageError(c, "expected one FILE (or - for standard input), got %d", len(pos))
	case *subject == "":
		return e.usageError(c, "--subject is required")
	case *mode != "auto" && *mode != "bar" && *mode != "lines" && *mode != "none":
		return e.usageError(c, "--progress: expected auto, bar, lines or none")
	}
	var r io.Reader = e.Stdin
	var total int64
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			fmt.Fprintf(e.Stderr, "flowrun publish: %v\n", err)
			return ExitFailure
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			total = st.Size()
		}
		r = f
	}
	nc, err := natsgo.Connect(*url, natsgo.Name("flowrun publish"), natsgo.Timeout(*timeout), natsgo.MaxReconnects(-1))
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun publish: connect %s: %v\n", *url, err)
		return ExitFailure
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun publish: %v\n", err)
		return ExitFailure
	}
	if *mode == "auto" {
		*mode = "lines"
		if e.IsTerminal() {
			*mode = "bar"
		}
	}
	var p *progress
	if *mode != "none" {
		p = newProgress(e.Stderr, *mode, total)
	}
	st := publishAll(ctx, js, r, *subject, *idField, *timeout, p, func(format string, args ...any) {
		fmt.Fprintf(e.Stderr, "flowrun publish: "+format+"\n", args...)
	})
	if p != nil {
		p.done(st.records)
	}
	rate := 0.0
	if el := time.Since(st.start); el > 0 {
		rate = float64(st.published) / el.Seconds()
	}
	fmt.Fprintf(e.Stderr, "publish: %d records to %s in %s (%.0f/s): %d published, %d duplicates, %d failed\n",
		st.records, *subject, round(time.Since(st.start)), rate, st.published, st.duplicates, st.failed)
	if st.err != nil {
		fmt.Fprintf(e.Stderr, "flowrun publish: %v\n", st.err)
		return ExitFailure
	}
	if st.failed > 0 {
		return ExitFailure
	}
	return ExitOK
}

type publishStats struct {
	start                                  time.Time
	records, published, duplicates, failed int
	err                                    error // reading the input, or interrupted
}

// publishAll publishes each line of r, a window of acknowledgements at a
// time.
func publishAll(ctx context.Context, js jetstream.JetStream, r io.Reader, subject, idField string, timeout time.Duration,
	p *progress, warn func(string, ...any)) publishStats {
	st := publishStats{start: time.Now()}
	type pending struct {
		line int
		f    jetstream.PubAckFuture
	}
	var window []pending
	settle := func() {
		for _, w := range window {
			select {
			case ack := <-w.f.Ok():
				if ack.Duplicate {
					st.duplicates++
				} else {
					st.published++
				}
			case err := <-w.f.Err():
				st.failed++
				warn("line %d: %v", w.line, err)
			case <-time.After(timeout):
				st.failed++
				warn("line %d: no acknowledgement after %s", w.line, timeout)
			}
		}
		window = window[:0]
	}
	br := bufio.NewReaderSize(r, 1<<16)
	var offset int64
	for line := 1; ; line++ {
		if ctx.Err() != nil {
			st.err = fmt.Errorf("interrupted: input after line %d was not read", line-1)
			break
		}
		b, err := br.ReadBytes('\n')
		offset += int64(len(b))
		if err != nil && err != io.EOF {
			st.err = err
			break
		}
		b = bytes.TrimSpace(b)
		if len(b) > 0 {
			st.records++
			id, perr := recordID(b, idField, line)
			if perr != nil {
				st.failed++
				warn("line %d: %v", line, perr)
			} else {
				msg := natsgo.NewMsg(subject)
				msg.Data = b
				msg.Header.Set("Content-Type", "application/json")
				f, perr := js.PublishMsgAsync(msg, jetstream.WithMsgID(id))
				if perr != nil {
					st.failed++
					warn("line %d: %v", line, perr)
				} else {
					window = append(window, pending{line, f})
				}
			}
			if len(window) >= 256 {
				settle()
			}
			if p != nil {
				p.update(st.records, offset)
			}
		}
		if err == io.EOF {
			break
		}
	}
	settle()
	return st
}

// publishSpace is the UUID namespace of generated message ids.
var publishSpace = uuid.MustParse("0f6b2c1e-7c55-4d8e-9a57-3c0d2a9e5b41")

// recordID is the record's idField value, or a UUID of the line number and
// the line.
func recordID(b []byte, idField string, line int) (string, error) {
	if !json.Valid(b) {
		return "", fmt.Errorf("not JSON")
	}
	if idField == "" {
		sum := sha256.Sum256(append([]byte(strconv.Itoa(line)+"\n"), b...))
		return uuid.NewSHA1(publishSpace, sum[:]).String(), nil
	}
	var rec map[string]json.RawMessage
	if err := json.Unmarshal(b, &rec); err != nil {
		return "", fmt.Errorf("--id %s: the record is not an object", idField)
	}
	raw, ok := rec[idField]
	if !ok {
		return "", fmt.Errorf("--id %s: the record has no such field", idField)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return s, nil
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf("--id %s: not a string or number", idField)
}
