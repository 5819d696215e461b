package main

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progressReporter draws a live bar at the bottom of stderr while it passes
// everything on to the reporter it wraps: done / total (done so far for a
// stream), failed, running, rate, percentage and ETA.
type progressReporter struct {
	reporter
	prog    *mpb.Progress
	bar     *mpb.Bar
	flush   func() // flushes the reporter's buffered output
	finish  func() // after the bar is gone: writers go straight to their files
	workers int
	start   time.Time

	total        int          // from the header: -1 for a stream
	shown        atomic.Int64 // the total less the tasks skipped by the job log
	done, failed atomic.Int64
	running      atomic.Int64
	finished     bool
}

func newProgressReporter(rep reporter, prog *mpb.Progress, workers int, flush, finish func()) *progressReporter {
	return &progressReporter{reporter: rep, prog: prog, workers: workers, flush: flush, finish: finish, start: time.Now()}
}

func (p *progressReporter) Header(h header) {
	p.reporter.Header(h)
	p.flush()
	p.total = h.Tasks
	p.shown.Store(int64(h.Tasks))
	counts := decor.Any(func(decor.Statistics) string {
		done := p.done.Load()
		s := fmt.Sprintf("%d done", done)
		if p.total >= 0 {
			s = fmt.Sprintf("%d/%d done", done, p.shown.Load())
		}
		rate := 0.0
		if el := time.Since(p.start).Seconds(); el > 0 {
			rate = float64(done) / el
		}
		return fmt.Sprintf("%s, %d failed, %d running, %.1f/s", s, p.failed.Load(), p.running.Load(), rate)
	}, decor.WCSyncSpaceR)
	if p.total < 0 {
		p.bar = p.prog.New(0, mpb.SpinnerStyle().PositionLeft(), mpb.PrependDecorators(counts))
		return
	}
	p.bar = p.prog.AddBar(int64(p.total),
		mpb.PrependDecorators(counts),
		mpb.AppendDecorators(
			decor.Percentage(decor.WC{W: 5}),
			decor.Name(" ETA "),
			decor.AverageETA(decor.ET_STYLE_GO),
		))
}

func (p *progressReporter) Result(o outcome) {
	p.reporter.Result(o)
	if o.Res.Err != nil {
		p.failed.Add(1)
	}
	// The result that would complete the bar waits for end: mpb draws the
	// lines written above a bar at its next refresh, and there is none
	// after the bar is complete, so the last row would be lost.
	if done := p.done.Add(1); p.total < 0 || done < int64(p.total) {
		p.bar.Increment()
	}
}

// skipped is told of n tasks that --resume skips: they leave the total.
// Only the total shown changes; the bar completes at the end, in end.
func (p *progressReporter) skipped(n int) {
	if p.total < 0 || p.bar == nil {
		return
	}
	p.bar.SetTotal(p.shown.Add(-int64(n)), false)
}

// setPending is told the results submitted and not yet reported; at most
// one task a worker runs at a time, the rest wait in the queue.
func (p *progressReporter) setPending(n int) {
	p.running.Store(int64(min(n, p.workers)))
}

func (p *progressReporter) Summary(s summary) {
	p.end()
	p.reporter.Summary(s)
}

// end takes the bar down: what was written above it is out, and what comes
// after goes straight to the files.
func (p *progressReporter) end() {
	if p.finished {
		return
	}
	p.finished = true
	p.flush()
	if p.bar != nil {
		p.running.Store(0)
		p.bar.SetTotal(p.done.Load(), true)
	}
	p.prog.Wait()
	p.finish()
}

// barWriter writes whole lines above the bar, holding a partial line until
// its end comes, so that the bar never tears one. After done, it writes
// straight to after.
type barWriter struct {
	mu      sync.Mutex
	prog    io.Writer
	after   io.Writer
	partial []byte
	done    bool
}

func (b *barWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return b.after.Write(p)
	}
	b.partial = append(b.partial, p...)
	i := bytes.LastIndexByte(b.partial, '\n')
	if i < 0 {
		return len(p), nil
	}
	if _, err := b.prog.Write(b.partial[:i+1]); err != nil {
		// The bar is gone (it could not draw): write on without it.
		b.done = true
		if _, err := b.after.Write(b.partial); err != nil {
			return 0, err
		}
		b.partial = nil
		return len(p), nil
	}
	b.partial = append(b.partial[:0], b.partial[i+1:]...)
	return len(p), nil
}

// stop sends what is held and everything after to after.
func (b *barWriter) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.partial) > 0 {
		_, _ = b.after.Write(b.partial)
		b.partial = nil
	}
	b.done = true
}
