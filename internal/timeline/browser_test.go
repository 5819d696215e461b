package timeline

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/color"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// browser starts headless Chromium for a test and returns a context to
// drive it with. Without a browser the test skips, saying how to install
// one, except in CI (CI=true), where it fails.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		const msg = "no chromium, chromium-browser or google-chrome in $PATH: install Chromium (Debian: apt-get install chromium) to run the timeline's browser tests"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // the tests run as root in CI
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 720),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	// Start the browser now, so that the tests time the page, not it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// writePage renders trace to a file and returns its file:// URL.
func writePage(t *testing.T, trace []byte, title string) string {
	t.Helper()
	var out bytes.Buffer
	if err := Render(bytes.NewReader(trace), &out, title); err != nil {
		t.Fatalf("Render: %v", err)
	}
	file := filepath.Join(t.TempDir(), "timeline.html")
	if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return "file://" + file
}

// logArtifact logs where a test saved file, and whether it is kept.
func logArtifact(t *testing.T, file string) {
	t.Helper()
	if f := flag.Lookup("test.artifacts"); os.Getenv("POOLD_TEST_ARTIFACTS") == "" && (f == nil || f.Value.String() != "true") {
		t.Logf("saved %s (removed after the test: keep it with go test -artifacts -outputdir DIR, or POOLD_TEST_ARTIFACTS=DIR)", file)
		return
	}
	t.Logf("saved %s", file)
}

// artifactDir is where a test saves what a person should look at: the
// directory $POOLD_TEST_ARTIFACTS when set, else t.ArtifactDir(), which
// go test -artifacts -outputdir DIR keeps.
func artifactDir(t *testing.T) string {
	if dir := os.Getenv("POOLD_TEST_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.ArtifactDir()
}

// run runs a browser action that returns a value, failing the test on an
// error.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// discard drops the value of an action, to run it with chromedp.Do.
func discard[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

type point struct {
	X, Y float64
	Kind string
}

// TestBrowserCrashRun is acceptance 2 of issue 12: the page of 20 tasks on
// 4 workers with one crash, opened in headless Chromium, draws a bar per
// task and the crash, shows a task's details on click and on hover, and is
// saved as a PNG screenshot.
func TestBrowserCrashRun(t *testing.T) {
	ctx := browser(t)
	trace, crashTrack := crashRun().trace()
	_, p := pageData(t, trace, "20 tasks, 4 workers, one crash")
	lost, other := -1, -1
	for i := range p.Bars.ID {
		switch p.Bars.ID[i] {
		case "t07":
			lost = i
		case "t12":
			other = i
		}
	}
	deathMark := -1
	for i, m := range p.Marks {
		if m.Name == "worker death" {
			deathMark = i
		}
	}

	err := chromedp.Do(ctx,
		chromedp.Navigate(writePage(t, trace, "20 tasks, 4 workers, one crash")),
		discard(chromedp.Poll[bool](`window.timeline && window.timeline.drawn`, chromedp.WithPollingTimeout(10*time.Second))),
	)
	if err != nil {
		t.Fatal(err)
	}
	type hook struct{ Bars, Deaths, BarsDrawn, DeathsDrawn int }
	h := run(t, ctx, chromedp.Evaluate[hook](`timeline`))
	bars, deaths, barsDrawn, deathsDrawn := h.Bars, h.Deaths, h.BarsDrawn, h.DeathsDrawn
	lostAt := run(t, ctx, chromedp.Evaluate[point](fmt.Sprintf(`timeline.barPoint(%d)`, lost)))
	otherAt := run(t, ctx, chromedp.Evaluate[point](fmt.Sprintf(`timeline.barPoint(%d)`, other)))
	deathAt := run(t, ctx, chromedp.Evaluate[point](fmt.Sprintf(`timeline.markPoint(%d)`, deathMark)))
	summary := run(t, ctx, chromedp.Text("#summary"))
	legend := run(t, ctx, chromedp.Text("#legend"))
	shot := run(t, ctx, chromedp.CaptureScreenshot())
	if bars != 20 || barsDrawn != 20 {
		t.Errorf("bars %d, drawn %d: want 20 and 20", bars, barsDrawn)
	}
	if deaths != 1 || deathsDrawn != 1 {
		t.Errorf("deaths %d, drawn %d: want 1 and 1", deaths, deathsDrawn)
	}
	if !strings.Contains(summary, "20 task runs") || !strings.Contains(summary, "1 worker death ·") {
		t.Errorf("summary %q", summary)
	}
	if !strings.Contains(legend, "worker_lost (1)") || !strings.Contains(legend, "ok (19)") {
		t.Errorf("legend %q", legend)
	}

	// What the page shows: the crashed run's bar in the worker_lost
	// colour, the death's marker red, an ok bar green.
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// Below the middle of a bar, away from its label.
	near := func(at point, dy float64, want color.RGBA, what string) {
		t.Helper()
		c := color.RGBAModel.Convert(img.At(int(at.X), int(at.Y+dy))).(color.RGBA)
		d := func(a, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }
		if d(c.R, want.R) > 40 || d(c.G, want.G) > 40 || d(c.B, want.B) > 40 {
			t.Errorf("%s at (%.0f, %.0f): colour %v, want about %v", what, at.X, at.Y+dy, c, want)
		}
	}
	near(lostAt, 6, color.RGBA{0xd6, 0x27, 0x28, 0xff}, "crashed run t07")
	near(otherAt, 6, color.RGBA{0x4c, 0xaf, 0x50, 0xff}, "ok run t12")
	near(point{X: deathAt.X, Y: deathAt.Y - 9}, 2, color.RGBA{0xd0, 0, 0, 0xff}, "death marker") // its triangle, at the row's top

	// A click at the crashed run's bar pins its details; hovering over
	// another bar shows that one's.
	if err := chromedp.Do(ctx, chromedp.MouseClickXY(lostAt.X, lostAt.Y)); err != nil {
		t.Fatal(err)
	}
	clicked := run(t, ctx, chromedp.Text("#details"))
	// The screenshot, with t07 clicked and its details shown.
	dir := artifactDir(t)
	file := filepath.Join(dir, "timeline-crash.png")
	if err := os.WriteFile(file, run(t, ctx, chromedp.CaptureScreenshot()), 0o644); err != nil {
		t.Fatal(err)
	}
	logArtifact(t, file)
	if err := chromedp.Do(ctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, otherAt.X, otherAt.Y)); err != nil {
		t.Fatal(err)
	}
	hovered := run(t, ctx, chromedp.Text("#details"))
	for _, want := range []string{"task      t07", "function  square", "attempts  1", "pid       1004", "failed: worker_lost", "signal: killed", "worker    " + crashTrack, "start     ", "duration  "} {
		if !strings.Contains(clicked, want) {
			t.Errorf("details after a click on t07 lack %q:\n%s", want, clicked)
		}
	}
	if !strings.Contains(hovered, "task      t12") || !strings.Contains(hovered, "outcome   ok") {
		t.Errorf("details on hover over t12:\n%s", hovered)
	}
	// The hook selects by index too.
	sel := run(t, ctx, chromedp.Evaluate[string](fmt.Sprintf(`timeline.select(%d)`, other)))
	if !strings.Contains(sel, "task      t12") {
		t.Errorf("select(%d): %q", other, sel)
	}

	// A trace with no events yet (a run killed at once) draws too.
	err = chromedp.Do(ctx,
		chromedp.Navigate(writePage(t, []byte(`{"displayTimeUnit":"ms","traceEvents":[`), "empty")),
		discard(chromedp.Poll[bool](`window.timeline && window.timeline.drawn`, chromedp.WithPollingTimeout(10*time.Second))),
	)
	if err != nil {
		t.Fatalf("empty trace: %v", err)
	}
}

// TestBrowser100k checks that the page of 100,000 task runs draws its
// first frame within 2 s of the navigation, in headless Chromium.
func TestBrowser100k(t *testing.T) {
	ctx := browser(t)
	s := synth{tasks: 100000, workers: 8, crash: 50000, failEvery: 997, dur: func(i int) float64 { return float64(500 + (i*7919)%3000) }, closed: true}
	trace, _ := s.trace()
	start := time.Now()
	url := writePage(t, trace, "100,000 tasks")
	t.Logf("trace %.1f MB, rendered to HTML in %v", float64(len(trace))/1e6, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		discard(chromedp.Poll[bool](`window.timeline && window.timeline.drawn`, chromedp.WithPollingInterval(5*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))),
	)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	bars := run(t, ctx, chromedp.Evaluate[int](`timeline.bars`))
	firstDraw := run(t, ctx, chromedp.Evaluate[float64](`timeline.firstDrawMs`))
	t.Logf("100,000 runs: first frame %v after the navigation began (page clock: %.0f ms)", elapsed.Round(time.Millisecond), firstDraw)
	if bars != 100000 {
		t.Errorf("bars %d, want 100000", bars)
	}
	if elapsed > 2*time.Second {
		t.Errorf("first frame after %v, want under 2 s", elapsed)
	}
	file := filepath.Join(artifactDir(t), "timeline-100k.png")
	if err := os.WriteFile(file, run(t, ctx, chromedp.CaptureScreenshot()), 0o644); err != nil {
		t.Fatal(err)
	}
	logArtifact(t, file)
	// A zoom and a pan redraw too.
	err = chromedp.Do(ctx,
		// (CDP's mouseWheel wants a deltaX that cdproto omits when 0.)
		discard(chromedp.Evaluate[chromedp.Void](`document.getElementById("chart").dispatchEvent(new WheelEvent("wheel", {deltaY: -500, clientX: 600, clientY: 200, bubbles: true, cancelable: true}))`)),
		discard(chromedp.Poll[bool](`timeline.frames >= 2 && timeline.view().t1 - timeline.view().t0 < 0.9 * timeline.view().full`, chromedp.WithPollingTimeout(5*time.Second))),
	)
	if err != nil {
		t.Fatalf("zoom: %v", err)
	}
	type view struct{ T0, T1 float64 }
	before := run(t, ctx, chromedp.Evaluate[view](`timeline.view()`))
	err = chromedp.Do(ctx,
		chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, 700, 200, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 600, 200, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 500, 200, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, 500, 200, chromedp.ButtonLeft),
	)
	if err != nil {
		t.Fatalf("pan: %v", err)
	}
	after := run(t, ctx, chromedp.Evaluate[view](`timeline.view()`))
	if w0, w1 := before.T1-before.T0, after.T1-after.T0; after.T0 <= before.T0 || math.Abs(w1-w0) > 1e-6*w0 {
		t.Errorf("a drag to the left: view %+v -> %+v, want later, as wide", before, after)
	}
}
