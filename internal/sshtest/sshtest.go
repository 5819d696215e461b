// Package sshtest starts real OpenSSH servers on 127.0.0.1 for tests, so
// that a test can run `ssh -F CONFIG hostA CMD` against several "hosts" (one
// sshd each, on its own port with its own host key) and stop one of them
// mid-test.
//
// Host keys are checked (StrictHostKeyChecking yes, against a known_hosts
// file written here), never switched off: the client sees what it would see
// against real hosts, and a test of the "unknown host key" failure uses
// [Cluster.ConfigWithoutHostKeys]. Every Config also names [Closed], a port
// nothing listens on, for the "connection refused" failure.
//
// The servers run as the current user, who logs in to them with a key
// made for the test: as root (CI), or as an ordinary user whose account
// may log in (not locked, a real shell). A remote command runs with sshd's
// minimal PATH: name remote programs by absolute path. Its environment
// holds SSHTEST_SERVER (one value per server), by which the test's Cleanup
// finds and kills what the sessions left running.
//
// It runs on Linux only (it finds sshd's processes in /proc); elsewhere,
// [Hosts] skips the test.
package sshtest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Closed is the Host alias, in every [Cluster.Config], of a port on
// 127.0.0.1 that nothing listens on: ssh to it fails at once with
// "Connection refused". The port stays reserved (bound, not listening)
// until the test ends, so that nothing else can take it meanwhile.
const Closed = "closed"

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

// A Cluster is the sshd servers that [Hosts] started, and the client
// configuration to reach them.
type Cluster struct {
	ssh          string // the ssh client's path
	config       string
	configNoKeys string
	knownHosts   string
	servers      map[string]*Server
}

// A Server is one host's sshd.
type Server struct {
	t    testing.TB
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
}

// tools are the OpenSSH programs a Cluster runs.
type tools struct {
	sshd, ssh, keygen string
}

// Hosts starts one sshd per name (each on its own free port, each with its
// own host key) and writes one ssh_config with a Host entry per name, and
// one for [Closed]. It skips the test when OpenSSH's server or client is
// missing, saying how to install it, except when the environment has
// CI=true, where that is a t.Fatal. Everything is stopped and removed with
// t.Cleanup.
//
// The servers start in parallel. A name is letters, digits, '.', '_' and
// '-'.
func Hosts(t testing.TB, names ...string) *Cluster {
	t.Helper()
	tl := findTools(t)
	seen := map[string]bool{}
	for _, name := range names {
		if !validName(name) || name == Closed || seen[name] {
			t.Fatalf("sshtest.Hosts: bad or repeated host name %q (letters, digits, '.', '_', '-'; not %q)", name, Closed)
		}
		seen[name] = true
	}
	if os.Geteuid() == 0 {
		// sshd, as root, chroots its pre-authentication child into its
		// privilege separation directory, and refuses to start without
		// it; Debian's package creates it at boot, not at install.
		if err := os.Mkdir("/run/sshd", 0o755); err == nil {
			os.Chmod("/run/sshd", 0o755) // whatever the umask
		} else if !errors.Is(err, os.ErrExist) {
			t.Fatalf("sshtest: creating sshd's privilege separation directory: %v", err)
		}
	}
	login, err := userName()
	if err != nil {
		t.Fatalf("sshtest: the current user: %v", err)
	}

	dir := t.TempDir()
	c := &Cluster{
		ssh:          tl.ssh,
		config:       filepath.Join(dir, "ssh_config"),
		configNoKeys: filepath.Join(dir, "ssh_config_no_host_keys"),
		knownHosts:   filepath.Join(dir, "known_hosts"),
		servers:      map[string]*Server{},
	}
	clientKey := filepath.Join(dir, "client_key")
	if err := keygen(tl.keygen, clientKey); err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	closedPort, closeReserved, err := reservePort()
	if err != nil {
		t.Fatalf("sshtest: reserving a closed port: %v", err)
	}
	t.Cleanup(closeReserved)

	// Start every server at once: most of a start is sshd loading its
	// host key and binding, not this process.
	servers := make([]*Server, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			servers[i], errs[i] = start(t, tl, filepath.Join(dir, name), name, authorized)
		})
	}
	wg.Wait()
	// Stop whatever did start, also when another server failed; Cleanup,
	// not defer, so that the servers outlive Hosts.
	t.Cleanup(func() {
		for _, s := range servers {
			if s != nil {
				s.close()
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	var known, hostsCfg strings.Builder
	for _, s := range servers {
		c.servers[s.name] = s
		key, err := hostKey(filepath.Join(dir, s.name, "host_key.pub"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&known, "[127.0.0.1]:%d %s\n", s.port, key)
		fmt.Fprintf(&hostsCfg, "Host %s\n\tHostName 127.0.0.1\n\tPort %d\n\n", s.name, s.port)
	}
	fmt.Fprintf(&hostsCfg, "Host %s\n\tHostName 127.0.0.1\n\tPort %d\n\n", Closed, closedPort)
	empty := filepath.Join(dir, "known_hosts_empty")
	for _, f := range []struct{ path, body string }{
		{c.knownHosts, known.String()},
		{empty, ""},
		{c.config, hostsCfg.String() + clientConfig(login, clientKey, c.knownHosts)},
		{c.configNoKeys, hostsCfg.String() + clientConfig(login, clientKey, empty)},
	} {
		if err := os.WriteFile(f.path, []byte(f.body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// clientConfig is the part of an ssh_config common to every host. ssh takes
// each option's first value, so the Host entries above it win for HostName
// and Port, and an `ssh -o` option wins over both.
func clientConfig(login, key, knownHosts string) string {
	return fmt.Sprintf(`Host *
	User %s
	IdentityFile "%s"
	IdentitiesOnly yes
	# Never a prompt: a test must fail, not wait on a terminal.
	BatchMode yes
	StrictHostKeyChecking yes
	UserKnownHostsFile "%s"
	GlobalKnownHostsFile /dev/null
	UpdateHostKeys no
	ConnectTimeout 5
	# A host that stops answering (SIGSTOP, a lost route) is noticed in ~6 s.
	ServerAliveInterval 2
	ServerAliveCountMax 3
	LogLevel ERROR
	# One connection per ssh: stopping a host cuts what its sshd served,
	# with no master connection shared between tests.
	ControlMaster no
	ControlPath none
`, login, key, knownHosts)
}

// Config returns the path of the generated ssh_config: a Host entry per
// name given to [Hosts], and [Closed].
func (c *Cluster) Config() string { return c.config }

// ConfigWithoutHostKeys returns the path of an ssh_config like Config's, but
// whose known_hosts file is empty: ssh to any of its hosts fails with "Host
// key verification failed" (exit status 255), without a prompt.
func (c *Cluster) ConfigWithoutHostKeys() string { return c.configNoKeys }

// KnownHosts returns the path of the known_hosts file that Config uses: one
// line per host, "[127.0.0.1]:PORT ssh-ed25519 KEY".
func (c *Cluster) KnownHosts() string { return c.knownHosts }

// SSH returns the ssh command line for these hosts, {"/usr/bin/ssh", "-F",
// Config()} (ssh's path as found in $PATH): append the host and the remote
// command. The slice is new at every call.
func (c *Cluster) SSH() []string { return []string{c.ssh, "-F", c.config} }

// Host returns the server of a name given to [Hosts]; it panics for another
// name.
func (c *Cluster) Host(name string) *Server {
	s, ok := c.servers[name]
	if !ok {
		panic(fmt.Sprintf("sshtest: no host %q", name))
	}
	return s
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
// kills them. Stop may be called twice, and concurrently.
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
			s.t.Errorf("sshtest: %s's sshd (pid %d) or its connections' sshd %v outlived SIGKILL by %v", s.name, s.pid, sshds, killWait)
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

// close, at the test's end, stops the server, kills what its sessions had
// started, and logs the end of sshd's log if the test failed.
func (s *Server) close() {
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
	if s.t.Failed() {
		s.t.Logf("sshtest: the end of %s's sshd log (%s):\n%s", s.name, s.log, tail(s.log))
	}
}

// start starts one host's sshd in dir, on a free port.
func start(t testing.TB, tl tools, dir, name, authorized string) (*Server, error) {
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
		s, err := launch(t, tl.sshd, dir, name, port, hostKey, authorized)
		if !errors.Is(err, errBind) || attempt == bindAttempts {
			return s, err
		}
	}
}

// errBind is a failed start for want of the port: another process took it.
var errBind = errors.New("sshd could not bind its port")

// launch starts sshd on port, and waits until it listens.
func launch(t testing.TB, sshd, dir, name string, port int, hostKey, authorized string) (*Server, error) {
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
		t:    t,
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

// findTools finds OpenSSH's programs, or skips the test (fails it in CI).
func findTools(t testing.TB) tools {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("sshtest runs on Linux only (it reads /proc), not on %s", runtime.GOOS)
	}
	var tl tools
	var missing []string
	// sshd is usually outside an ordinary user's $PATH.
	if st, err := os.Stat("/usr/sbin/sshd"); err == nil && st.Mode()&0o111 != 0 {
		tl.sshd = "/usr/sbin/sshd"
	} else if p, err := exec.LookPath("sshd"); err == nil {
		tl.sshd, _ = filepath.Abs(p)
	} else {
		missing = append(missing, "sshd (/usr/sbin/sshd)")
	}
	for _, p := range []struct {
		name string
		path *string
	}{{"ssh", &tl.ssh}, {"ssh-keygen", &tl.keygen}} {
		if found, err := exec.LookPath(p.name); err == nil {
			*p.path = found
		} else {
			missing = append(missing, p.name)
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("OpenSSH's %s not found: install OpenSSH (Debian: apt-get install openssh-server openssh-client) to run the tests over ssh", strings.Join(missing, ", "))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return tl
}

// userName is the current user's login name, which the client sends.
func userName() (string, error) {
	u, err := user.Current()
	if err == nil && u.Username != "" {
		return u.Username, nil
	}
	for _, v := range []string{"USER", "LOGNAME"} {
		if name := os.Getenv(v); name != "" {
			return name, nil
		}
	}
	return "", fmt.Errorf("no name for uid %d: %v", os.Getuid(), err)
}

// keygen writes a new ed25519 key without a passphrase to path and
// path.pub.
func keygen(program, path string) error {
	out, err := exec.Command(program, "-q", "-t", "ed25519", "-N", "", "-C", "sshtest", "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("sshtest: ssh-keygen %s: %v: %s", path, err, out)
	}
	return nil
}

// hostKey reads a public key file as a known_hosts line's key: its type and
// base64 body, without the comment.
func hostKey(pubFile string) (string, error) {
	b, err := os.ReadFile(pubFile)
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return "", fmt.Errorf("sshtest: %s is not a public key: %q", pubFile, b)
	}
	return f[0] + " " + f[1], nil
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

// reservePort binds a TCP socket to a free port on 127.0.0.1 without
// listening on it: a connection to the port is refused (the kernel answers
// with a reset), and no other socket can bind it until release.
func reservePort() (port int, release func(), err error) {
	// As the net package does: no fork between socket and CloseOnExec, so
	// that no child (an sshd) inherits the socket.
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return 0, nil, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return 0, nil, err
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return 0, nil, err
	}
	return sa.(*syscall.SockaddrInet4).Port, func() { syscall.Close(fd) }, nil
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

// validName reports whether name may be a host's: it becomes a Host alias
// in the ssh_config (where '*', '?', '!' and spaces mean something) and a
// directory's name.
func validName(name string) bool {
	if name == "" || name[0] == '.' || name[0] == '-' {
		return false
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
