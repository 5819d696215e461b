package integration_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// TestKeepOrder: -k prints 10,000 results of tasks of random length in
// input order, for a JSON file and for a JSON Lines stream.
func TestKeepOrder(t *testing.T) {
	t.Parallel()
	var lines []string
	for range 10000 {
		lines = append(lines, fmt.Sprintf(`{"func": "sleep", "args": {"seconds": %.4f}}`, rand.Float64()*0.0005))
	}
	for _, c := range []struct{ name, file string }{
		{"json", writeFile(t, "tasks.json", "["+strings.Join(lines, ",\n")+"]")},
		{"jsonl", writeFile(t, "tasks.jsonl", strings.Join(lines, "\n")+"\n")},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runPoold(t, runOpts{}, "-n", "4", "-k", "--json", c.file)
			if r.Code != 0 {
				t.Fatalf("exit %d; stderr:\n%.2000s", r.Code, r.Stderr)
			}
			dec := json.NewDecoder(strings.NewReader(r.Stdout))
			for want := 0; ; want++ {
				var rec struct{ Index int }
				if err := dec.Decode(&rec); err == io.EOF {
					if want != 10000 {
						t.Errorf("%d results, want 10000", want)
					}
					break
				} else if err != nil {
					t.Fatal(err)
				}
				if rec.Index != want {
					t.Fatalf("result %d has index %d: not in input order", want, rec.Index)
				}
			}
		})
	}
}

// TestKeepOrderBoundedMemory: -k on a stream of 1,000,000 tasks keeps
// poold's peak memory within 64 MiB: results wait for their turn within
// the window.
func TestKeepOrderBoundedMemory(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	go func() {
		for i := range 1000000 {
			fmt.Fprintf(pw, `{"func": "echo", "args": {"value": %d}}`+"\n", i)
		}
		pw.Close()
	}()
	c := startPoold(t, runOpts{stdinR: pr, timeout: 300e9}, "-n", "2", "-k", "-q", "--jsonl", "-")
	r, peak := peakWhileRunning(t, c) // poold's own peak, not its workers'
	if r.Code != 0 || !strings.Contains(r.Stdout, "1000000 tasks: 1000000 ok") {
		t.Fatalf("exit %d; stdout:\n%.2000s\nstderr:\n%.2000s", r.Code, r.Stdout, r.Stderr)
	}
	if peak > 64<<10 {
		t.Errorf("poold's peak RSS %d KiB, over 64 MiB", peak)
	}
	t.Logf("1,000,000 tasks with -k in %v, poold's peak RSS %.1f MiB", r.Wall, float64(peak)/1024)
}

// vmHWM is a process's peak resident memory so far, in KiB (0 once gone).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb
		}
	}
	return 0
}
