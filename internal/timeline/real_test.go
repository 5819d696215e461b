package timeline

import (
	"bytes"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/poold/poold/internal/kind"
	"github.com/poold/poold/internal/pool"
	"github.com/poold/poold/internal/trace"
)

// realTrace is what the project's own trace writer (internal/trace, the
// writer behind --trace) writes for 20 tasks on 4 workers, one of them
// crashing its worker, which is replaced: the page is drawn from that
// format, not from a copy of it.
func realTrace(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := trace.New(&buf, false)
	at := time.Now().UnixNano()
	ms := func(n int) int64 { return at + int64(n)*int64(time.Millisecond) }
	for slot := range 4 {
		w.Event(pool.Event{Kind: pool.WorkerStarted, Time: ms(0), PID: 101 + slot, Worker: slot})
	}
	pid := func(slot, i int) int {
		if slot == 2 && i > 1 {
			return 105 // the replacement
		}
		return 101 + slot
	}
	for i := range 20 {
		slot, k := i%4, i/4
		e := pool.Event{Kind: pool.TaskRun, Func: "square", Name: fmt.Sprintf("t%02d", i), Index: -1,
			PID: pid(slot, k), Worker: slot, Attempts: 1, Start: ms(10 * k), End: ms(10*k + 8), CPU: 8 * time.Millisecond, MaxRSS: 6 << 20}
		if i == 6 { // slot 2's second task: its worker dies under it
			e.Fail, e.Lost, e.CPU = kind.WorkerLost, true, -1
		}
		w.Event(e)
		if i == 6 {
			w.Event(pool.Event{Kind: pool.WorkerExited, Time: ms(10*k + 8), PID: 103, Worker: 2,
				Exit: &pool.Exit{PID: 103, ExitCode: -1, Signal: syscall.SIGKILL}, Reason: "worker pid 103 killed by signal 9 (killed)"})
			w.Event(pool.Event{Kind: pool.WorkerStarted, Time: ms(10*k + 9), PID: 105, Worker: 2, Replaces: 103})
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBrowserRealTrace(t *testing.T) {
	ctx := browser(t)
	tr := realTrace(t)
	_, p := pageData(t, tr, "real")
	lost := -1
	for i, id := range p.Bars.ID {
		if id == "t06" {
			lost = i
		}
	}
	if lost < 0 {
		t.Fatalf("no bar for t06 among %v", p.Bars.ID)
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(writePage(t, tr, "real")),
		discard(chromedp.Poll[bool](`window.timeline && window.timeline.drawn`, chromedp.WithPollingTimeout(10*time.Second))),
	)
	if err != nil {
		t.Fatal(err)
	}
	type hook struct{ Bars, Deaths, Replacements int }
	h := run(t, ctx, chromedp.Evaluate[hook](`timeline`))
	if h.Bars != 20 || h.Deaths != 1 || h.Replacements != 1 {
		t.Errorf("drawn from the writer's trace: %+v; want 20 bars, 1 death, 1 replacement", h)
	}
	at := run(t, ctx, chromedp.Evaluate[point](fmt.Sprintf(`timeline.barPoint(%d)`, lost)))
	if err := chromedp.Do(ctx, chromedp.MouseClickXY(at.X, at.Y)); err != nil {
		t.Fatal(err)
	}
	details := run(t, ctx, chromedp.Text("#details"))
	for _, want := range []string{"t06", "square", "worker_lost", "103"} {
		if !strings.Contains(details, want) {
			t.Errorf("details of the crashed run lack %q:\n%s", want, details)
		}
	}
}
