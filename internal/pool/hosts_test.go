package pool

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold/internal/kind"
	child "github.com/poold/poold/internal/worker"
)

// helloScript is a worker program that writes h as its hello, then waits:
// a worker of another version, as the parent sees it.
func helloScript(t *testing.T, h any) []string {
	t.Helper()
	body := raw(t, h)
	frame := append([]byte{0, 0, 0, byte(len(body))}, body...)
	file := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(file, frame, 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"/bin/sh", "-c", `cat "$0"; exec sleep 10`, file}
}

// TestVersionMismatch: a worker of another protocol version, older (whose
// hello has three fields) or newer (with fields this version does not
// know), is refused with both versions named, and its program and host
// when it says them; the pool does not try it again and again.
func TestVersionMismatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		hello []any
		says  []string
	}{
		{"older", []any{1, 4242, 4, []string{"echo"}}, []string{"speaks protocol 4 (a version before 5", "this pool protocol 5"}},
		{"newer", []any{1, 4242, 9, []string{}, "poold v9.0.0", "node7", 64, false, "later"}, []string{"worker on node7 speaks protocol 9 (poold v9.0.0)", "this pool protocol 5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			begin := time.Now()
			_, err := New(t.Context(), Config{Workers: 2, Command: helloScript(t, tc.hello), KillGrace: 50 * time.Millisecond})
			if !errors.Is(err, ErrWorkerStart) {
				t.Fatalf("New: %v, want ErrWorkerStart", err)
			}
			for _, w := range tc.says {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\ndoes not say %q", err, w)
				}
			}
			if el := time.Since(begin); el > 3*time.Second {
				t.Errorf("New gave up after %v: a version mismatch is hopeless at once", el)
			}
		})
	}
}

// TestHostOutOfRotation: of two hosts, the one whose workers cannot start
// is taken out of rotation with one warning; New returns with the other's
// workers, which run every task, and results name their host.
func TestHostOutOfRotation(t *testing.T) {
	t.Parallel()
	var log syncLog
	logger := hclog.New(&hclog.LoggerOptions{Output: &log, Level: hclog.Warn})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPool(t, Config{Logger: logger, Hosts: []Host{
		{Name: "good", Workers: 2, Command: []string{self}},
		{Name: "bad", Workers: 2, Command: []string{"/bin/false"}},
	}})
	if p.Size() != 4 {
		t.Errorf("Size %d, want the 4 slots of both hosts", p.Size())
	}
	var args []any
	for i := range 20 {
		args = append(args, i)
	}
	for _, c := range run(t, p, "echo", 1, args...) {
		if c.Fail != nil || c.Host != "good" {
			t.Errorf("a call on host %q: %+v", c.Host, c.Fail)
		}
	}
	if n := strings.Count(log.String(), "out of rotation"); n != 1 || !strings.Contains(log.String(), "host bad is out of rotation after 4 failed starts") ||
		!strings.Contains(log.String(), "its tasks go to good") {
		t.Errorf("%d warnings, want one about host bad:\n%s", n, log.String())
	}
}

// TestEveryHostOut: when no host can start a worker, New fails with
// ErrWorkerStart, and says why.
func TestEveryHostOut(t *testing.T) {
	t.Parallel()
	_, err := New(t.Context(), Config{Hosts: []Host{
		{Name: "a", Workers: 1, Command: []string{"/bin/false"}},
		{Name: "b", Workers: 1, Command: []string{"/no/such/program"}},
	}})
	if !errors.Is(err, ErrWorkerStart) {
		t.Fatalf("New: %v, want ErrWorkerStart", err)
	}
}

// TestExplicitWorkerSetup: a worker that asks for its settings in its
// hello (`poold worker`) gets them in a Setup, says hello again, and
// serves; its own pid is the one results carry.
func TestExplicitWorkerSetup(t *testing.T) {
	t.Parallel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary serves as an explicit worker when told so (TestMain).
	p := newTestPool(t, Config{Workers: 1, Command: []string{"/bin/sh", "-c", `"$0" ; exit $?`, self}, Env: []string{explicitVar + "=1"}})
	c := run(t, p, "pid", 1, struct{}{})[0]
	if c.Fail != nil {
		t.Fatal(c.Fail)
	}
	p.mu.Lock()
	launcher := p.slots[0].w.launcherPID
	p.mu.Unlock()
	if got := value[int](t, c); got != c.PID || got == launcher || launcher == 0 {
		t.Errorf("the call ran in pid %d, the result says %d, the launcher is %d", got, c.PID, launcher)
	}
}

// TestNoProgressNoLoop: a worker that records no progress says, when it
// dies, that it had not started its job, every time. A job that kills
// every worker it reaches must still fail, with worker_lost, after a few
// tries, not go back to the queue for ever.
func TestNoProgressNoLoop(t *testing.T) {
	t.Parallel()
	l := newGoLauncher()
	l.noProgress = true
	p, err := New(t.Context(), Config{Workers: 1, Launcher: l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Terminate() })
	c := run(t, p, "die", 1, 3)[0]
	if c.Fail == nil || c.Fail.Kind != kind.WorkerLost {
		t.Fatalf("a job that kills its worker: %+v, want worker_lost", c.Fail)
	}
	if n := l.launched.Load(); n > maxUnstarted+2 {
		t.Errorf("%d workers launched for one job that kills each, want at most %d", n, maxUnstarted+2)
	}
}

// A line that a worker's launcher writes to stderr as the worker says hello
// (a warning of ssh's) is logged, and the worker adopted, as ever. Under the
// race detector this checks that the stderr reader reads the worker's
// logger, which adopt replaces under Pool.mu, only ordered after that (it
// once read it unguarded). The line comes from memory, not a pipe: a read
// system call would order the two for the race detector, not for the
// memory model.
func TestLauncherStderrAsWorkerAdopted(t *testing.T) {
	t.Parallel()
	const line = "launcher says hi"
	l := &chattyLauncher{goLauncher: newGoLauncher(), line: `{"@level":"warn","@message":"` + line + `"}` + "\n"}
	p := newTestPool(t, Config{Workers: 1, Launcher: l})
	p.mu.Lock()
	w := p.slots[0].w
	explicit := w.explicit
	p.mu.Unlock()
	if !explicit {
		t.Fatal("a worker whose hello names another pid than its launcher's was not adopted")
	}
	if c := run(t, p, "echo", 1, 7)[0]; value[int](t, c) != 7 {
		t.Errorf("echo 7 gave %d", value[int](t, c))
	}
	// The line is logged before it joins the tail.
	for deadline := time.Now().Add(10 * time.Second); !slices.Contains(w.tail.lines(), line); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the launcher's line is not in the worker's stderr tail %q", w.tail.lines())
		}
	}
}

// chattyLauncher is a goLauncher whose workers run behind a launcher (their
// hello says another pid than the one launched), which writes line to
// their stderr first.
type chattyLauncher struct {
	*goLauncher
	line string
}

func (l *chattyLauncher) Launch(s child.Settings) (*Conn, error) {
	c, err := l.goLauncher.Launch(s)
	if err != nil {
		return nil, err
	}
	c.Program = "chatty"
	c.Stderr = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(strings.NewReader(l.line), c.Stderr), c.Stderr}
	return c, nil
}
