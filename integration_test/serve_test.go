package integration_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// interpreter finds a program of a client's language, or skips the test
// saying how to install it (under CI=true, fails).
func interpreter(t *testing.T, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (CI=true: apt-get install %s)", names[0], pkg)
	}
	t.Skipf("%s is not installed: apt-get install %s", names[0], pkg)
	return ""
}

// runClient runs one of the example clients' self-tests against the real
// poold serve: 10,000 tasks, 1 % bad lines, 1 % that kill their worker,
// one cancel, stats; every id once, with its kind.
func runClient(t *testing.T, argv ...string) {
	t.Helper()
	cmd := exec.Command(argv[0], append(argv[1:], pooldBin, "10000")...)
	cmd.Env = append(os.Environ(), debugEnv, tagVar+"="+newTag(t))
	done := make(chan struct{})
	timer := time.AfterFunc(120*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	close(done)
	if err != nil || !strings.HasPrefix(string(out), "ok: 10001 results") {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
	t.Logf("%s", out)
}

// TestServePythonClient: examples/clients/poold_client.py (standard
// library only) against the real poold serve.
func TestServePythonClient(t *testing.T) {
	t.Parallel()
	py := interpreter(t, "python3", "/usr/bin/python3", "python3")
	runClient(t, py, filepath.Join(rootDir, "examples", "clients", "selftest.py"))
}

// TestServeNodeClient: examples/clients/poold_client.js (Node built-ins
// only) against the real poold serve.
func TestServeNodeClient(t *testing.T) {
	t.Parallel()
	node := interpreter(t, "nodejs", "node", "nodejs")
	runClient(t, node, filepath.Join(rootDir, "examples", "clients", "selftest.js"))
}

// rssOf is a process's resident memory now, from /proc.
func rssOf(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestServeMemoryFlat: a server that runs 1,000,000 tasks holds no more
// memory at the end than after its first 100,000: what it keeps is bounded
// by its window, not by how long it runs.
func TestServeMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000,000 tasks")
	}
	t.Parallel()
	const n, early = 1_000_000, 100_000
	cmd := exec.Command(pooldBin, "serve", "-n", "2")
	cmd.Env = append(os.Environ(), tagVar+"="+newTag(t))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	go func() {
		w := bufio.NewWriterSize(in, 1<<16)
		for i := range n {
			fmt.Fprintf(w, `{"id":"t%d","func":"echo","args":{"value":%d}}`+"\n", i, i)
		}
		w.Flush()
		in.Close()
	}()
	sc := bufio.NewScanner(out)
	var rssEarly, rssPeakLate int64
	got := 0
	for sc.Scan() {
		if !strings.Contains(sc.Text(), `"ok":true`) {
			t.Fatalf("result %d: %s", got, sc.Text())
		}
		got++
		switch {
		case got == early:
			rssEarly = rssOf(t, cmd.Process.Pid)
		case got > early && got < n && got%100_000 == 0: // not at the last: it may have exited
			rssPeakLate = max(rssPeakLate, rssOf(t, cmd.Process.Pid))
		}
	}
	io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil || got != n {
		t.Fatalf("%d results of %d; poold serve: %v", got, n, err)
	}
	t.Logf("poold serve RSS: %.1f MiB after %d results, at most %.1f MiB after that, up to %d", mib(rssEarly), early, mib(rssPeakLate), n)
	if rssPeakLate > rssEarly+16<<20 {
		t.Errorf("RSS grew from %.1f MiB (after %d results) to %.1f MiB: not flat", mib(rssEarly), early, mib(rssPeakLate))
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
