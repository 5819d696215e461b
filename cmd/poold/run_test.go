package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// These tests call run in this process, so that goleak can see what a run
// leaves behind. The workers are this test binary (see TestMain). None is
// parallel: TestRunInterrupted signals the whole process.

func TestRunUsageErrorStartsNothing(t *testing.T) {
	defer goleak.VerifyNone(t)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-n", "0", "-"}, strings.NewReader(`[{"func": "echo"}]`), &stdout, &stderr); code != exitUsage {
		t.Errorf("exit status %d, want %d", code, exitUsage)
	}
	if stdout.Len() != 0 || !strings.Contains(stderr.String(), "-n must be at least 1") {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}

	stdout.Reset()
	stderr.Reset()
	code := run([]string{"-"}, strings.NewReader("[\n{\"func\": \"nope\"}]"), &stdout, &stderr)
	if code != exitUsage || stdout.Len() != 0 || !strings.Contains(stderr.String(), `poold: stdin: entry 0 (line 2): unknown task "nope"`) {
		t.Errorf("status %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

func TestRunInProcess(t *testing.T) {
	defer goleak.VerifyNone(t)
	var stdout, stderr bytes.Buffer
	tasks := `[{"id": "a", "func": "echo", "args": {"value": "x"}},
	           {"id": "m", "map": "pow", "args": [{"base": 2, "exp": 10}, {"base": 3, "exp": 3}], "chunksize": 1},
	           {"id": "p", "func": "crash", "args": {"mode": "panic"}}]`
	code := run([]string{"-n", "2", "--json", "-"}, strings.NewReader(tasks), &stdout, &stderr)
	if code != exitFailed {
		t.Errorf("exit status %d, want %d; stderr:\n%s", code, exitFailed, stderr.String())
	}
	got := map[string]string{}
	for line := range strings.Lines(stdout.String()) {
		var r struct {
			ID     string          `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *jsonError      `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		if r.Error != nil {
			got[r.ID] = r.Error.Kind
		} else {
			got[r.ID] = string(r.Result)
		}
	}
	want := map[string]string{"a": `"x"`, "m[0]": `"1024"`, "m[1]": `"27"`, "p": "panic"}
	if len(got) != len(want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %s, want %s", id, got[id], w)
		}
	}
	if !strings.Contains(stderr.String(), "4 tasks: 3 ok, 1 failed; ") {
		t.Errorf("no summary on stderr:\n%s", stderr.String())
	}
}

// signalOnWrite sends sig to this process the first time a write contains
// trigger, as a user pressing Ctrl-C after the first result would.
type signalOnWrite struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	trigger string
	sig     syscall.Signal
	sent    bool
}

func (w *signalOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.sent && bytes.Contains(p, []byte(w.trigger)) {
		w.sent = true
		syscall.Kill(syscall.Getpid(), w.sig)
	}
	return w.buf.Write(p)
}

func TestRunInterrupted(t *testing.T) {
	defer goleak.VerifyNone(t)
	tasks := `[{"id": "quick", "func": "echo", "args": {"value": 1}},
	           {"id": "slow", "func": "sleep", "args": {"seconds": 60}},
	           {"id": "slower", "map": "sleep", "args": [{"seconds": 60}, {"seconds": 60}, {"seconds": 60}]}]`
	stdout := &signalOnWrite{trigger: `"id":"quick"`, sig: syscall.SIGTERM}
	var stderr bytes.Buffer
	code := run([]string{"-n", "2", "--json", "-"}, strings.NewReader(tasks), stdout, &stderr)
	if code != 128+int(syscall.SIGTERM) {
		t.Errorf("exit status %d, want 143; stderr:\n%s", code, stderr.String())
	}
	out := stdout.buf.String()
	if n := strings.Count(out, `"kind":"terminated"`); n != 4 {
		t.Errorf("%d tasks terminated, want 4:\n%s", n, out)
	}
	if !strings.Contains(stderr.String(), "interrupted by SIGTERM") {
		t.Errorf("stderr does not say why it stopped:\n%s", stderr.String())
	}
}
