package sshtest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// startTimeout bounds one sshd's start (it takes ~20 ms; the machine may
	// be busy with other tests).
	startTimeout = 15 * time.Second
	// bindAttempts is how many free ports a server tries: another process
	// may take the port between freePort and sshd's bind.
	bindAttempts = 3
	// termGrace is how long Stop waits after SIGTERM before SIGKILL.
	termGrace = time.Second
	// killWait is how long Stop waits, after SIGKILL, before it reports the
	// processes that survived it.
	killWait = 5 * time.Second
)

// A Server is one host's sshd.
type Server struct {
	name string
	port int
	pid  int
	log  string
	comm string // the kernel's name (comm) of an sshd process
	// mark is the NAME=VALUE that sshd puts in its sessions' environment
	// (unique to this server), by which Cleanup finds remote commands
	// whose connection is gone.
	mark string

	done chan struct{} // closed once the listener is reaped
	once sync.Once

	// remote are the processes that sessions started (remote commands),
	// found when Stop ran, SSHTEST_SERVER or not. Stop leaves them
	// running, as a cut connection would; the test's Cleanup kills them.
	remote []proc
	// stopErr says which sshd processes outlived Stop's SIGKILL.
	stopErr error
}

// Port returns the server's port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// PID returns the listening sshd's process id. Each connection has its own
// sshd processes (children of this one, in sessions of their own), and each
// remote command its own process under them.
func (s *Server) PID() int { return s.pid }

// Stop stops the host's sshd: it sends SIGTERM to the listener's process
// group and to the per-connection sshd processes, then, if one is left
// after a second, SIGKILL, and waits for the listener. Then a connection
// to the port is refused (unless another process takes the port), and the
// sessions in progress are cut: their ssh clients exit with status 255.
// A connection that arrives during Stop is reset or refused.
//
// The remote commands are not killed: like a program whose connection was
// cut, each finds its stdin at EOF and its stdout's reader gone (poll(2)
// reports POLLERR on fd 1, a write fails with EPIPE). The test's Cleanup
// ([Cluster.Close]) kills them, and reports an sshd process that outlived
// SIGKILL, if one did. Stop may be called twice, and concurrently.
func (s *Server) Stop() { s.once.Do(s.stop) }

func (s *Server) stop() {
	// The per-connection sshd processes call setsid(2): they are not in
	// the listener's process group, and once the listener is gone they
	// are init's children. Find them now, each stopped (SIGSTOP) before
	// its children are listed, so that no sshd forks one unseen: the
	// listener no new connection (one it has not accepted yet is reset
	// when it dies), a connection's sshd no new remote command.
	var sshds, procs []proc
	frozen := map[int]bool{}
	freeze := func(pid int) {
		frozen[pid] = true
		var gone <-chan struct{} // a connection's sshd is not our child
		if pid == s.pid {
			gone = s.done
		}
		if syscall.Kill(pid, syscall.SIGSTOP) == nil {
			waitStopped(pid, gone)
		}
	}
	freeze(s.pid)
	for more := true; more; {
		more = false
		procs = descendants(s.pid)
		for _, p := range procs {
			if p.comm == s.comm && !frozen[p.pid] {
				freeze(p.pid)
				more = true
			}
		}
	}
	for _, p := range procs {
		if p.comm == s.comm {
			sshds = append(sshds, p)
		} else {
			s.remote = append(s.remote, p)
		}
	}
	signal := func(sig syscall.Signal) {
		syscall.Kill(-s.pid, sig)
		for _, p := range sshds {
			p.signal(sig)
		}
	}
	signal(syscall.SIGTERM)
	signal(syscall.SIGCONT) // to act on it
	if !s.wait(sshds, termGrace) {
		signal(syscall.SIGKILL)
		if !s.wait(sshds, killWait) {
			s.stopErr = fmt.Errorf("sshtest: %s's sshd (pid %d) or its connections' sshd %v outlived SIGKILL by %v", s.name, s.pid, sshds, killWait)
		}
	}
}

// wait waits up to d for the listener to be reaped and procs to be gone,
// and reports whether they are.
func (s *Server) wait(procs []proc, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		alive := false
		for _, p := range procs {
			alive = alive || p.alive()
		}
		select {
		case <-s.done:
			if !alive {
				return true
			}
		default:
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// close, at the test's end (Cluster.Close), stops the server, kills what
// its sessions had started and waits for it to go. Its error is Stop's:
// sshd processes that outlived SIGKILL.
func (s *Server) close() error {
	s.Stop()
	// The remote commands: those Stop found, and those whose connection
	// had ended before (their ssh killed: they are init's children now),
	// found by their environment.
	remote := append(s.remote, withEnv(s.mark)...)
	for _, p := range remote {
		// A remote command leads its own process group: kill what it
		// started too.
		p.signalGroup(syscall.SIGKILL)
	}
	// Let them go before t.TempDir is removed under them.
	deadline := time.Now().Add(killWait)
	for _, p := range remote {
		for p.alive() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return s.stopErr
}

// start starts one host's sshd in dir, on a free port.
func start(tl tools, dir, name, authorized string) (*Server, error) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	hostKey := filepath.Join(dir, "host_key")
	if err := keygen(tl.keygen, hostKey); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := launch(tl.sshd, dir, name, port, hostKey, authorized)
		if !errors.Is(err, errBind) || attempt == bindAttempts {
			return s, err
		}
	}
}

// errBind is a failed start for want of the port: another process took it.
var errBind = errors.New("sshd could not bind its port")

// launch starts sshd on port, and waits until it listens.
func launch(sshd, dir, name string, port int, hostKey, authorized string) (*Server, error) {
	var token [8]byte
	rand.Read(token[:])
	mark := fmt.Sprintf("SSHTEST_SERVER=%s-%x", name, token)
	config := filepath.Join(dir, "sshd_config")
	// MaxStartups and MaxSessions are generous: tests open many
	// connections at once, and sshd drops the ones beyond its limits.
	body := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey "%s"
PidFile none
AuthorizedKeysFile "%s"
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
MaxStartups 100:30:200
MaxSessions 100
PrintMotd no
PrintLastLog no
SetEnv %s
`, port, hostKey, authorized, mark)
	if err := os.WriteFile(config, []byte(body), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "sshd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	// sshd needs its own absolute path (to re-execute itself for each
	// connection); -D keeps it in the foreground, as this process's child;
	// -e logs to stderr, here the log file. Its own process group keeps it
	// out of the test's, and out of signals sent to it.
	cmd := exec.Command(sshd, "-D", "-e", "-f", config)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{
		name: name,
		port: port,
		pid:  cmd.Process.Pid,
		log:  logPath,
		comm: comm(sshd),
		mark: mark,
		done: make(chan struct{}),
	}
	go func() {
		cmd.Wait()
		close(s.done)
	}()

	// sshd logs this line once it listens (and before it accepts), which
	// tells its own port from a port another process took: polling the
	// port could not.
	ready := []byte(fmt.Sprintf("Server listening on 127.0.0.1 port %d.", port))
	deadline := time.Now().Add(startTimeout)
	for {
		b, _ := os.ReadFile(logPath)
		if bytes.Contains(b, ready) {
			return s, nil
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(logPath)
			if bytes.Contains(b, []byte("Address already in use")) {
				return nil, fmt.Errorf("sshtest: %s: port %d: %w", name, port, errBind)
			}
			return nil, fmt.Errorf("sshtest: %s's sshd exited at start; the end of its log (%s):\n%s", name, logPath, tail(logPath))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("sshtest: %s's sshd did not listen on port %d within %v; the end of its log (%s):\n%s", name, port, startTimeout, logPath, tail(logPath))
		}
	}
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail is the end of a log file, for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimRight(string(b), "\n")
}

// comm is the kernel's name for a process running program: its base name,
// cut to 15 bytes.
func comm(program string) string {
	c := filepath.Base(program)
	if len(c) > 15 {
		c = c[:15]
	}
	return c
}

// Remote returns the pids of the live processes that this server's
// sessions started (remote commands and what they started, which inherit
// the server's SSHTEST_SERVER): the "remote" side of a test, whose
// orphans it looks for.
func (s *Server) Remote() []int {
	var pids []int
	for _, p := range withEnv(s.mark) {
		if p.alive() && p.pid != os.Getpid() {
			pids = append(pids, p.pid)
		}
	}
	return pids
}
