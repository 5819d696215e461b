package sshtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// probeEnv, set, makes the test binary the probe: a remote command that
// reports what poll(2) says of its stdin and stdout.
const probeEnv = "SSHTEST_PROBE"

func TestMain(m *testing.M) {
	if path := os.Getenv(probeEnv); path != "" {
		os.Exit(probe(path))
	}
	goleak.VerifyTestMain(m)
}

// probe polls fd 0 for input and fd 1 for errors, and appends to the file
// path a line per event, each after the Unix time in nanoseconds: "ready",
// "fd0 POLLIN", "fd0 EOF", "fd1 POLLERR" (its stdout's reader is gone:
// then it exits), "timeout" (after 40 s).
func probe(path string) int {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return 1
	}
	defer f.Close()
	say := func(s string) { fmt.Fprintf(f, "%d %s\n", time.Now().UnixNano(), s) }
	fds := []unix.PollFd{{Fd: 0, Events: unix.POLLIN}, {Fd: 1}} // POLLERR and POLLHUP need no asking
	say("ready")
	for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); {
		if _, err := unix.Poll(fds, 100); err != nil && err != unix.EINTR {
			say("poll: " + err.Error())
			return 1
		}
		for i := range fds {
			ev := fds[i].Revents
			if ev == 0 || fds[i].Fd < 0 {
				continue
			}
			say(fmt.Sprintf("fd%d %s", fds[i].Fd, pollNames(ev)))
			if fds[i].Fd == 1 {
				return 0
			}
			var buf [4096]byte
			if n, _ := unix.Read(0, buf[:]); n <= 0 {
				say("fd0 EOF")
				fds[i].Fd = -1
			}
		}
	}
	say("timeout")
	return 0
}

func pollNames(ev int16) string {
	var names []string
	for _, b := range []struct {
		bit  int16
		name string
	}{{unix.POLLIN, "POLLIN"}, {unix.POLLOUT, "POLLOUT"}, {unix.POLLERR, "POLLERR"}, {unix.POLLHUP, "POLLHUP"}, {unix.POLLNVAL, "POLLNVAL"}} {
		if ev&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	return strings.Join(names, "|")
}

// probeCommand is the remote command line that runs the probe, reporting
// to log. The race detector's exit delay (GORACE atexit_sleep_ms) would
// only slow it.
func probeCommand(t *testing.T, log string) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("GORACE=atexit_sleep_ms=0 %s=%s %s", probeEnv, log, exe)
}

// probeEvent waits up to d for the probe's log to have a line with event,
// and returns the line's time.
func probeEvent(t *testing.T, log, event string, d time.Duration) (time.Time, bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		b, _ := os.ReadFile(log)
		for line := range strings.Lines(string(b)) {
			ns, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
			if rest == event {
				n, _ := strconv.ParseInt(ns, 10, 64)
				return time.Unix(0, n), true
			}
		}
		if time.Now().After(deadline) {
			t.Logf("probe log %s:\n%s", log, b)
			return time.Time{}, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runSSH runs argv (an ssh command line) with stdin from /dev/null and a
// time limit, so that neither a prompt nor a hang can stall the test.
func runSSH(t *testing.T, argv ...string) (stdout, stderr string, code int, took time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	begin := time.Now()
	err := cmd.Run()
	took = time.Since(begin)
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("%q: %v", argv, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%q: still running after 30 s", argv)
	}
	return out.String(), errOut.String(), code, took
}

// session is an ssh running in the background.
type session struct {
	cmd  *exec.Cmd
	done chan error
}

// startSession starts `ssh host command` and, when command prints a line
// first, returns that line once read. The test must wait for it (wait).
func startSession(t *testing.T, argv []string, firstLine bool) (*session, string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	var stdout io.ReadCloser
	if firstLine {
		var err error
		if stdout, err = cmd.StdoutPipe(); err != nil {
			t.Fatal(err)
		}
	}
	stderr := new(strings.Builder)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &session{cmd: cmd, done: make(chan error, 1)}
	var line string
	if firstLine {
		line, _ = bufio.NewReader(stdout).ReadString('\n')
		line = strings.TrimSpace(line)
		// Left open: the remote command's stdout keeps its reader.
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.done
	})
	return s, line
}

// wait waits up to d for the session's ssh to exit, and returns its exit
// status.
func (s *session) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-s.done:
		s.done <- nil // for the Cleanup
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("%q: still running after %v", s.cmd.Args, d)
		return 0
	}
}

// sshds returns the per-connection sshd processes under listener.
func sshds(listener int) []proc {
	var out []proc
	for _, p := range descendants(listener) {
		if p.comm == "sshd" {
			out = append(out, p)
		}
	}
	return out
}

func TestTwoHosts(t *testing.T) {
	c := Hosts(t, "hostA", "hostB")
	if a, b := c.Host("hostA").Port(), c.Host("hostB").Port(); a == b {
		t.Fatalf("both hosts on port %d", a)
	}
	for _, host := range []string{"hostA", "hostB"} {
		out, errOut, code, took := runSSH(t, append(c.SSH(), host, "echo ok; echo $SSH_CONNECTION")...)
		t.Logf("%s: %v", host, took)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 2 || lines[0] != "ok" {
			t.Fatalf("ssh %s: exit %d, stdout %q, stderr %q", host, code, out, errOut)
		}
		// SSH_CONNECTION is "client-address client-port server-address server-port".
		f := strings.Fields(lines[1])
		if want := strconv.Itoa(c.Host(host).Port()); len(f) != 4 || f[3] != want {
			t.Errorf("ssh %s: SSH_CONNECTION %q, want server port %s", host, lines[1], want)
		}
	}
	known, err := os.ReadFile(c.KnownHosts())
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(known), "\n"); n != 2 {
		t.Errorf("known_hosts has %d lines, want 2:\n%s", n, known)
	}
}

// TestFailures checks the two ways of not reaching a host that tests rely
// on: both exit 255, at once, without a prompt.
func TestFailures(t *testing.T) {
	c := Hosts(t, "hostA")
	for _, tc := range []struct {
		name, config, host, want string
	}{
		{"unknown host key", c.ConfigWithoutHostKeys(), "hostA", "Host key verification failed"},
		{"refused", c.Config(), Closed, "Connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code, took := runSSH(t, c.ssh, "-F", tc.config, tc.host, "echo reached")
			if code != 255 || !strings.Contains(errOut, tc.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 255 and %q", code, out, errOut, tc.want)
			}
			if took > 5*time.Second {
				t.Errorf("took %v", took)
			}
			t.Logf("%v: %s", took, strings.TrimSpace(errOut))
		})
	}
}

// TestStop stops a host with two sessions in progress: a sleep, and a
// probe of what the remote command sees.
func TestStop(t *testing.T) {
	c := Hosts(t, "hostA", "hostB")
	a := c.Host("hostA")
	sleeper, pid := startSession(t, append(c.SSH(), "hostA", "echo $$; exec sleep 30"), true)
	remoteSleep, err := strconv.Atoi(pid)
	if err != nil {
		t.Fatalf("remote pid %q: %v", pid, err)
	}
	log := filepath.Join(t.TempDir(), "probe.log")
	prober, _ := startSession(t, append(c.SSH(), "hostA", probeCommand(t, log)), false)
	if _, ok := probeEvent(t, log, "ready", 10*time.Second); !ok {
		t.Fatal("the probe did not start")
	}
	conns := sshds(a.PID())
	if len(conns) < 2 {
		t.Fatalf("per-connection sshd processes %v, want at least 2", conns)
	}
	sleepProc, _, _ := readProc(remoteSleep)

	begin := time.Now()
	a.Stop()
	t.Logf("Stop took %v", time.Since(begin))
	for _, s := range []*session{sleeper, prober} {
		if code := s.wait(t, 3*time.Second); code != 255 {
			t.Errorf("%q: exit %d after Stop, want 255", s.cmd.Args, code)
		}
	}
	t.Logf("sessions cut in %v", time.Since(begin))
	if at, ok := probeEvent(t, log, "fd1 POLLERR", 3*time.Second); !ok {
		t.Error("the remote probe saw no POLLERR on its stdout")
	} else {
		t.Logf("the remote probe's fd 1: POLLERR %v after Stop began", at.Sub(begin))
	}

	if err := syscall.Kill(a.PID(), 0); err != syscall.ESRCH {
		t.Errorf("listener %d: kill 0: %v, want ESRCH", a.PID(), err)
	}
	for _, p := range conns {
		if p.alive() {
			t.Errorf("connection's sshd %v outlived Stop", p)
		}
	}
	// Stop leaves remote commands to the end of the test, as a cut
	// connection would.
	if !sleepProc.alive() {
		t.Errorf("remote sleep %d ended with Stop", remoteSleep)
	}
	_, errOut, code, _ := runSSH(t, append(c.SSH(), "hostA", "true")...)
	if code != 255 || !strings.Contains(errOut, "Connection refused") {
		t.Errorf("ssh hostA after Stop: exit %d, stderr %q; want 255, Connection refused", code, errOut)
	}
	if out, errOut, code, _ := runSSH(t, append(c.SSH(), "hostB", "echo ok")...); code != 0 || out != "ok\n" {
		t.Errorf("ssh hostB after hostA's Stop: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	begin = time.Now()
	a.Stop()
	if d := time.Since(begin); d > 100*time.Millisecond {
		t.Errorf("a second Stop took %v", d)
	}
}

// TestCleanup checks that the end of a test stops everything, remote
// commands included, without Stop.
func TestCleanup(t *testing.T) {
	var (
		listener int
		conns    []proc
		remote   proc
		client   *session
	)
	t.Run("cluster", func(t *testing.T) {
		c := Hosts(t, "hostA")
		listener = c.Host("hostA").PID()
		s, pid := startSession(t, append(c.SSH(), "hostA", "echo $$; exec sleep 30"), true)
		n, err := strconv.Atoi(pid)
		if err != nil {
			t.Fatalf("remote pid %q: %v", pid, err)
		}
		remote, _, _ = readProc(n)
		conns = sshds(listener)
		client = s
	})
	if client == nil {
		t.FailNow()
	}
	if err := syscall.Kill(listener, 0); err != syscall.ESRCH {
		t.Errorf("listener %d: kill 0: %v, want ESRCH", listener, err)
	}
	if len(conns) == 0 {
		t.Error("no per-connection sshd")
	}
	for _, p := range append(conns, remote) {
		if p.alive() {
			t.Errorf("%v outlived the test", p)
		}
	}
	// The session's ssh was killed by the subtest's cleanup; its Wait
	// returned there.
}

// TestRemoteSide shows what a remote command sees when its connection's
// local end goes: the ssh client killed, or only its stdin closed. The
// remote side of a pool over ssh relies on it.
func TestRemoteSide(t *testing.T) {
	c := Hosts(t, "hostA")
	for _, kill := range []bool{true, false} {
		name := map[bool]string{true: "client killed", false: "stdin closed"}[kill]
		t.Run(name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "probe.log")
			argv := append(c.SSH(), "hostA", probeCommand(t, log))
			cmd := exec.Command(argv[0], argv[1:]...)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				cmd.Process.Kill()
				cmd.Wait()
			}()
			if _, ok := probeEvent(t, log, "ready", 10*time.Second); !ok {
				t.Fatal("the probe did not start")
			}
			begin := time.Now()
			if kill {
				cmd.Process.Kill()
				at, ok := probeEvent(t, log, "fd1 POLLERR", 3*time.Second)
				if !ok {
					t.Fatal("no POLLERR on the remote fd 1")
				}
				t.Logf("POLLERR on the remote fd 1 %v after SIGKILL", at.Sub(begin))
				return
			}
			stdin.Close()
			at, ok := probeEvent(t, log, "fd0 EOF", 3*time.Second)
			if !ok {
				t.Fatal("no EOF on the remote fd 0")
			}
			t.Logf("EOF on the remote fd 0 %v after closing stdin", at.Sub(begin))
			if _, ok := probeEvent(t, log, "fd1 POLLERR", 500*time.Millisecond); ok {
				t.Error("POLLERR on the remote fd 1 with the client still reading")
			}
		})
	}
}

// TestStartClose uses Start and Close as a program without a test does
// (the benchmark harness): Close stops the listener, cuts the sessions,
// kills the remote commands and frees nothing twice; a bad name fails
// Start before anything runs.
func TestStartClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "servers") // Start creates it
	c, err := Start(dir, "hostA")
	switch {
	case errors.Is(err, ErrUnsupported):
		t.Skip(err)
	case errors.Is(err, ErrMissing) && os.Getenv("CI") != "true":
		t.Skip(err)
	case err != nil:
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			c.Close()
		}
	}()
	if pids := c.PIDs(); len(pids) != 1 || pids[0] != c.Host("hostA").PID() {
		t.Errorf("PIDs() = %v, want [%d]", pids, c.Host("hostA").PID())
	}
	s, pid := startSession(t, append(c.SSH(), "hostA", "echo $$; exec sleep 30"), true)
	n, err := strconv.Atoi(pid)
	if err != nil {
		t.Fatalf("remote pid %q: %v", pid, err)
	}
	remote, _, _ := readProc(n)
	conns := sshds(c.Host("hostA").PID())

	begin := time.Now()
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	closed = true
	t.Logf("Close took %v", time.Since(begin))
	if code := s.wait(t, 3*time.Second); code != 255 {
		t.Errorf("ssh: exit %d after Close, want 255", code)
	}
	if err := syscall.Kill(c.Host("hostA").PID(), 0); err != syscall.ESRCH {
		t.Errorf("listener: kill 0: %v, want ESRCH", err)
	}
	for _, p := range append(conns, remote) {
		if p.alive() {
			t.Errorf("%v outlived Close", p)
		}
	}
	begin = time.Now()
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if d := time.Since(begin); d > 100*time.Millisecond {
		t.Errorf("a second Close took %v", d)
	}

	if _, err := Start(filepath.Join(t.TempDir(), "bad"), "host A"); err == nil || errors.Is(err, ErrMissing) {
		t.Errorf("Start with the name %q: %v, want a bad-name error", "host A", err)
	}
}
