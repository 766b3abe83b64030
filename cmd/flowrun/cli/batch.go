package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// maxLine bounds one JSONL record; a longer line is an error record.
const maxLine = 64 << 20

// batchStats counts the records of a batch by outcome.
type batchStats struct {
	records, ok, stopped, failed int
	elapsed                      time.Duration
	interrupted                  bool
	lastLine                     int // line number of the last record read
}

// errRecord is the output line of a record that did not complete.
type errRecord struct {
	Record int             `json:"record"` // its line number in the input
	Kind   string          `json:"kind"`   // an errors.Kind (stop, retry-exhausted, fatal, failed, panic, canceled, ...), or input (not a JSON object)
	Error  string          `json:"error"`
	Input  json.RawMessage `json:"input,omitempty"`
	Line   string          `json:"line,omitempty"` // the raw line, when it is not JSON
}

// batchOptions configures runBatch.
type batchOptions struct {
	workers  int
	progress *progress // nil: none
}

// marshal encodes v without escaping <, > and & (error messages hold
// expressions).
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte(`{"kind":"failed","error":"cannot encode the record's result"}`)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// processRecord runs f on one record and returns the output line and
// the outcome.
func processRecord(ctx context.Context, f *flow.Flow, line []byte, n int) ([]byte, errors.Kind) {
	c, err := fc.FromJSON(line)
	if err != nil {
		return marshal(errRecord{Record: n, Kind: "input", Error: "not a JSON object: " + err.Error(), Line: string(line)}), errors.KindFailed
	}
	if err := f.RunContext(ctx, c); err != nil {
		kind := errors.KindOf(err)
		rec := errRecord{Record: n, Kind: kind.String(), Error: err.Error()}
		if json.Valid(line) {
			rec.Input = json.RawMessage(bytes.Clone(line))
		}
		return marshal(rec), kind
	}
	b, err := c.MarshalJSON()
	if err != nil {
		return marshal(errRecord{Record: n, Kind: errors.KindFailed.String(), Error: "encoding the output: " + err.Error(), Input: json.RawMessage(bytes.Clone(line))}), errors.KindFailed
	}
	return b, errors.KindOK
}

func (s *batchStats) count(k errors.Kind) {
	s.records++
	switch k {
	case errors.KindOK:
		s.ok++
	case errors.KindStop, errors.KindDropped:
		s.stopped++
	default:
		s.failed++
	}
}

// lineReader reads JSONL lines, skipping blank ones, counting line numbers
// and bytes.
type lineReader struct {
	br     *bufio.Reader
	line   int
	offset int64
	buf    []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 1<<16)}
}

// next returns the next non-blank line (valid until the next call), its
// line number, and io.EOF at the end. A line over maxLine is returned
// cut, with tooLong set.
func (lr *lineReader) next() (line []byte, n int, tooLong bool, err error) {
	for {
		chunk, err := lr.br.ReadSlice('\n')
		lr.offset += int64(len(chunk))
		switch {
		case err == nil || (err == io.EOF && len(chunk) > 0):
			line = chunk // the common case: the whole line in the buffer, no copy
		case err == io.EOF:
			return nil, 0, false, io.EOF
		case err == bufio.ErrBufferFull:
			lr.buf = append(lr.buf[:0], chunk...)
			for err == bufio.ErrBufferFull {
				chunk, err = lr.br.ReadSlice('\n')
				lr.offset += int64(len(chunk))
				if len(lr.buf)+len(chunk) <= maxLine {
					lr.buf = append(lr.buf, chunk...)
				} else {
					tooLong = true
				}
			}
			if err != nil && err != io.EOF {
				return nil, 0, false, err
			}
			line = lr.buf
		default:
			return nil, 0, false, err
		}
		lr.line++
		if t := bytes.TrimSpace(line); len(t) > 0 || tooLong {
			return t, lr.line, tooLong, nil
		}
	}
}

func tooLongRecord(n int) []byte {
	return marshal(errRecord{Record: n, Kind: "input", Error: fmt.Sprintf("line longer than %d bytes", maxLine)})
}

// runBatch runs f once per JSONL record of r and writes one line per
// record to w, in input order. Records run on opts.workers goroutines
// beside a reading goroutine; a failed record is written as an errRecord
// and never stops the batch. It returns when the input is consumed,
// writing fails, or ctx is done: then every record already read is
// finished and written, and runBatch returns without waiting for a read
// that blocks (standard input with no data); that reading goroutine ends
// when its Read returns.
func runBatch(ctx context.Context, f *flow.Flow, r io.Reader, w io.Writer, opts batchOptions) (batchStats, error) {
	start := time.Now()
	bw := bufio.NewWriterSize(w, 1<<16)
	var st batchStats
	err := batchParallel(ctx, f, newLineReader(r), bw, &st, max(opts.workers, 1), opts.progress)
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("writing output: %w", ferr)
	}
	st.elapsed = time.Since(start)
	if opts.progress != nil {
		opts.progress.done(st.records)
	}
	return st, err
}

func writeLine(bw *bufio.Writer, b []byte) error {
	if _, err := bw.Write(b); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if err := bw.WriteByte('\n'); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

// A chunk is a run of consecutive records handed to a worker at once, so
// channel costs are paid per chunk rather than per record.
const (
	chunkRecords = 64
	chunkBytes   = 256 << 10
)

type batchRecord struct {
	n       int
	line    []byte
	tooLong bool
	offset  int64 // input offset after the record
	out     []byte
	kind    errors.Kind
}

type batchChunk struct {
	seq     int
	records []batchRecord
}

// batchParallel reads chunks of records in one goroutine, runs them on
// workers, and writes here in input order. A window of tokens bounds the
// chunks in flight, so memory stays flat whatever the input size. A chunk
// is handed over as soon as the reader would wait for more input, so a
// record never sits read but unprocessed while the input is idle.
func batchParallel(ctx context.Context, f *flow.Flow, lr *lineReader, bw *bufio.Writer, st *batchStats, workers int, prog *progress) error {
	stop, cancel := context.WithCancel(ctx) // ends reading early
	defer cancel()
	jobs := make(chan *batchChunk, workers)
	results := make(chan *batchChunk, workers)
	window := make(chan struct{}, workers*4)

	// Shared with the reader, under mu: once closed, it hands over no more
	// chunks, so the writer knows how many to wait for.
	var (
		mu         sync.Mutex
		closed     bool
		dispatched int
		lastLine   int
		readErr    error
		eof        bool // the whole input was read
	)
	go func() {
		defer close(jobs)
		for seq := 0; ; seq++ {
			select {
			case window <- struct{}{}:
			case <-stop.Done():
				return
			}
			ch := &batchChunk{seq: seq}
			size := 0
			var err error
			for len(ch.records) < chunkRecords && size < chunkBytes {
				var line []byte
				var n int
				var tooLong bool
				line, n, tooLong, err = lr.next()
				if err != nil {
					break
				}
				size += len(line)
				ch.records = append(ch.records, batchRecord{n: n, line: bytes.Clone(line), tooLong: tooLong, offset: lr.offset})
				if lr.br.Buffered() == 0 {
					break // the next read may wait: hand over what we have
				}
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				return
			}
			if len(ch.records) > 0 {
				dispatched++
				lastLine = ch.records[len(ch.records)-1].n
			}
			if err != nil && err != io.EOF {
				readErr = fmt.Errorf("reading input: %w", err)
			}
			eof = err == io.EOF
			mu.Unlock()
			if len(ch.records) > 0 {
				jobs <- ch // the writer drains every dispatched chunk
			} else {
				<-window
			}
			if err != nil {
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ch := range jobs {
				for i := range ch.records {
					r := &ch.records[i]
					if r.tooLong {
						r.out, r.kind = tooLongRecord(r.n), errors.KindFailed
					} else {
						r.out, r.kind = processRecord(ctx, f, r.line, r.n)
					}
					r.line = nil
				}
				results <- ch
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	pending := map[int]*batchChunk{}
	next, target := 0, -1 // target: the chunks to write before returning early
	var writeErr error
	done := ctx.Done()
	finish := func() { // hand over no more chunks; wait for those handed over
		cancel()
		mu.Lock()
		closed, target = true, dispatched
		mu.Unlock()
	}
loop:
	for target < 0 || next < target {
		select {
		case ch, ok := <-results:
			if !ok {
				break loop
			}
			pending[ch.seq] = ch
		case <-done:
			done = nil
			finish()
			continue
		}
		for {
			p, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			<-window
			if writeErr != nil {
				continue // drain so the workers end
			}
			for _, r := range p.records {
				if err := writeLine(bw, r.out); err != nil {
					writeErr = err
					if target < 0 {
						finish()
					}
					break
				}
				st.count(r.kind)
				if prog != nil {
					prog.update(st.records, r.offset)
				}
			}
		}
		if writeErr == nil && len(results) == 0 && bw.Buffered() > 0 {
			// Nothing else is ready: let the output follow the input (a
			// pipe read as it is written) rather than wait for a full buffer.
			if err := bw.Flush(); err != nil {
				writeErr = fmt.Errorf("writing output: %w", err)
				if target < 0 {
					finish()
				}
			}
		}
	}
	mu.Lock()
	st.lastLine = lastLine
	st.interrupted = ctx.Err() != nil && !eof && readErr == nil
	err := readErr
	mu.Unlock()
	if writeErr != nil {
		return writeErr
	}
	return err
}

// runBatch is the --jsonl mode of flowrun run.
func (e *Env) runBatch(ctx context.Context, c *Command, f *flow.Flow, in, out string, workers int, mode string) int {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var r io.Reader = e.Stdin
	var total int64
	var inInfo os.FileInfo
	if in != "-" {
		file, err := os.Open(in)
		if err != nil {
			return e.usageError(c, "--jsonl: %v", err)
		}
		defer file.Close()
		if st, err := file.Stat(); err == nil && st.Mode().IsRegular() {
			total, inInfo = st.Size(), st
		}
		r = file
	}
	var w io.Writer = e.Stdout
	if out != "-" {
		if st, err := os.Stat(out); err == nil && inInfo != nil && os.SameFile(st, inInfo) {
			return e.usageError(c, "--out is the --jsonl input: writing would destroy it")
		}
		file, err := os.Create(out)
		if err != nil {
			return e.usageError(c, "--out: %v", err)
		}
		defer file.Close()
		w = file
	}
	if mode == "auto" {
		mode = "lines"
		if e.IsTerminal() {
			mode = "bar"
		}
	}
	var p *progress
	if mode != "none" {
		p = newProgress(e.Stderr, mode, total)
	}
	st, err := runBatch(ctx, f, r, w, batchOptions{workers: workers, progress: p})
	rate := 0.0
	if st.elapsed > 0 {
		rate = float64(st.records) / st.elapsed.Seconds()
	}
	fmt.Fprintf(e.Stderr, "batch: %d records in %s (%.0f/s): %d ok, %d stopped, %d failed\n",
		st.records, round(st.elapsed), rate, st.ok, st.stopped, st.failed)
	if st.stopped+st.failed > 0 {
		where := "the output"
		if out != "-" {
			where = out
		}
		fmt.Fprintf(e.Stderr, "batch: records that did not complete are in %s with their line number (\"record\") and input\n", where)
	}
	if st.interrupted {
		fmt.Fprintf(e.Stderr, "batch: interrupted: input after line %d was not read\n", st.lastLine)
	}
	switch {
	case err != nil:
		fmt.Fprintf(e.Stderr, "flowrun run: %v\n", err)
		return ExitFailure
	case st.interrupted || st.failed > 0:
		return ExitFailure
	case st.stopped > 0:
		return ExitStopped
	}
	return ExitOK
}
