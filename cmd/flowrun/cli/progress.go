package cli

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress reports a batch's advance on standard error: a bar redrawn in
// place on a terminal (at most every 100ms), or a plain line per tenth of
// the input (per 100,000 records when its size is unknown) otherwise.
// It is driven by the records written: no goroutine, no timer.
type progress struct {
	w       io.Writer
	bar     bool
	total   int64 // input size in bytes; 0: unknown
	start   time.Time
	last    time.Time
	next    int64 // lines mode: the next tenth (or record count) to report
	offset  int64
	now     func() time.Time
	drawn   bool
	records int
}

// progressEvery is the record count between lines when the input size is
// unknown.
const progressEvery = 100_000

func newProgress(w io.Writer, mode string, total int64) *progress {
	p := &progress{w: w, bar: mode == "bar", total: total, now: time.Now, next: 1}
	p.start = p.now()
	if total <= 0 {
		p.next = progressEvery
	}
	return p
}

// update records that records are done and the input was read up to
// offset.
func (p *progress) update(records int, offset int64) {
	p.records, p.offset = records, offset
	if p.bar {
		if records%64 != 1 && records > 1 {
			return // look at the clock every 64 records only
		}
		if now := p.now(); now.Sub(p.last) >= 100*time.Millisecond {
			p.last = now
			p.draw(now)
		}
		return
	}
	if p.total > 0 {
		crossed := int64(0)
		for p.next <= 10 && offset*10 >= p.next*p.total {
			crossed = p.next
			p.next++
		}
		if crossed > 0 && crossed < 10 {
			fmt.Fprintf(p.w, "progress: %d%% (%d records, %s)\n", crossed*10, records, p.rate(p.now()))
		}
		return
	}
	if int64(records) >= p.next {
		fmt.Fprintf(p.w, "progress: %d records (%s)\n", records, p.rate(p.now()))
		p.next += progressEvery
	}
}

// done finishes the bar (the summary line follows).
func (p *progress) done(records int) {
	p.records = records
	if p.bar {
		if p.total > 0 {
			p.offset = p.total
		}
		p.draw(p.now())
		fmt.Fprintln(p.w)
	}
}

func (p *progress) rate(now time.Time) string {
	el := now.Sub(p.start).Seconds()
	if el <= 0 {
		return "- records/s"
	}
	return fmt.Sprintf("%.0f records/s", float64(p.records)/el)
}

const barWidth = 30

// draw redraws the bar line in place.
func (p *progress) draw(now time.Time) {
	var b strings.Builder
	b.WriteString("\r")
	eta := ""
	if p.total > 0 {
		frac := min(float64(p.offset)/float64(p.total), 1)
		fill := int(frac * barWidth)
		b.WriteString("[")
		b.WriteString(strings.Repeat("=", fill))
		if fill < barWidth {
			b.WriteString(">")
			b.WriteString(strings.Repeat(" ", barWidth-fill-1))
		}
		fmt.Fprintf(&b, "] %3.0f%%  ", frac*100)
		if el := now.Sub(p.start); frac > 0 && frac < 1 {
			eta = "  eta " + time.Duration(float64(el)*(1-frac)/frac).Round(time.Second).String()
		}
	}
	fmt.Fprintf(&b, "%d records  %s%s\x1b[K", p.records, p.rate(now), eta)
	fmt.Fprint(p.w, b.String())
	p.drawn = true
}
