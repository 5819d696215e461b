package tasks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashHelperEnv, when set, makes the test binary run the crash task with
// the JSON arguments it holds instead of the tests (see TestMain).
const crashHelperEnv = "POOLD_TASKS_CRASH_HELPER"

func TestMain(m *testing.M) {
	if args := os.Getenv(crashHelperEnv); args != "" {
		os.Exit(crashHelper(args))
	}
	os.Exit(m.Run())
}

// helperReady is what the helper writes to stderr just before it calls the
// task.
const helperReady = "helper: calling crash"

// crashHelper runs in the child: it calls the crash task as a worker would,
// with stdout as the protocol stream and a context that expires at once
// (which "hang" must ignore). It returns only if the task does.
func crashHelper(args string) int {
	var v any
	if err := json.Unmarshal([]byte(args), &v); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 98
	}
	raw, err := Marshal(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 98
	}
	ctx, cancel := context.WithTimeout(WithProtocolStream(context.Background(), os.Stdout), 10*time.Millisecond)
	defer cancel()
	fn, _ := builtins().Lookup("crash")
	fmt.Fprintln(os.Stderr, helperReady)
	_, err = fn(ctx, raw, nil)
	fmt.Fprintln(os.Stderr, "crash returned:", err)
	return 99
}

// startCrash starts the test binary as a crash helper.
func startCrash(t *testing.T, args string) (cmd *exec.Cmd, stdout, stderr *lockedBuffer) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOTRACEBACK=") { // it would turn "fatal" into SIGABRT
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, crashHelperEnv+"="+args)
	stdout, stderr = new(lockedBuffer), new(lockedBuffer)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdout, stderr
}

func TestCrashExits(t *testing.T) {
	tests := []struct {
		args   string
		signal syscall.Signal // the signal that must end the child, or 0
		exit   int            // else its exit status
		stderr string
	}{
		{args: `{"mode":"segfault"}`, signal: syscall.SIGSEGV, stderr: "poold crash task: mode segfault"},
		{args: `{"mode":"abort"}`, signal: syscall.SIGABRT, stderr: "poold crash task: mode abort"},
		{args: `{"mode":"kill"}`, signal: syscall.SIGKILL, stderr: "poold crash task: mode kill"},
		{args: `{"mode":"fatal"}`, exit: 2, stderr: "fatal error: sync: unlock of unlocked mutex"},
		{args: `{"mode":"exit","code":7}`, exit: 7, stderr: "poold crash task: mode exit"},
		{args: `{"mode":"exit","code":0}`, exit: 0},
		{args: `{"mode":"exit"}`, exit: 1},
		{args: `{"mode":"panic"}`, exit: 2, stderr: "panic: poold crash task: deliberate panic"}, // unrecovered here
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			t.Parallel()
			cmd, _, stderr := startCrash(t, tt.args)
			err := cmd.Wait()
			ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if tt.signal != 0 && !(ws.Signaled() && ws.Signal() == tt.signal) ||
				tt.signal == 0 && !(ws.Exited() && ws.ExitStatus() == tt.exit) {
				t.Errorf("child ended with %v, want signal %v or exit status %d", err, tt.signal, tt.exit)
			}
			if ws.CoreDump() {
				t.Errorf("child dumped core")
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.stderr)
			}
		})
	}
}

// TestCrashHangs checks that "hang" and "protocol" outlive their context,
// and what "protocol" writes.
func TestCrashHangs(t *testing.T) {
	for _, mode := range []string{"hang", "protocol"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			cmd, stdout, stderr := startCrash(t, `{"mode":"`+mode+`"}`)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() { <-done }()
			defer cmd.Process.Kill()
			want := ""
			if mode == "protocol" {
				want = protocolGarbage
			}
			// Starting a race-enabled test binary can take a second or two.
			if !waitFor(func() bool { return strings.Contains(stderr.String(), helperReady) && stdout.String() == want }) {
				t.Fatalf("child not started or wrong output: stdout %q, stderr %q; want stdout %q", stdout, stderr, want)
			}
			select {
			case err := <-done:
				done <- err
				t.Fatalf("child ended: %v; stderr: %s", err, stderr)
			case <-time.After(300 * time.Millisecond): // its context expired long ago
			}
			if stdout.String() != want {
				t.Fatalf("stdout %q, want %q", stdout, want)
			}
		})
	}
}

// waitFor polls cond for up to 10 seconds.
func waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

// lockedBuffer is a bytes.Buffer that can be read while exec.Cmd writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCrashOOM plays the pool's memory watchdog: the child's resident
// memory must grow past a limit, and then it is killed. The limit is modest
// because first-touching memory can be slow in a VM (about 100 MB/s on the
// machine this was written on).
func TestCrashOOM(t *testing.T) {
	t.Parallel()
	const limit = 256 << 20
	cmd, _, stderr := startCrash(t, `{"mode":"oom"}`)
	defer cmd.Wait()
	defer cmd.Process.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		rss, err := residentBytes(cmd.Process.Pid)
		if err != nil {
			t.Fatalf("%v; stderr: %s", err, stderr)
		}
		if rss >= limit {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("child's memory did not reach %d bytes in time", limit)
}

// residentBytes returns the VmRSS of a process.
func residentBytes(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if kb, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(kb, "kB")))
			return n << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status (exited?)", pid)
}
