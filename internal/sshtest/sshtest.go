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
// (or [Cluster.Close]) finds and kills what the sessions left running.
//
// A test calls [Hosts]; a program of its own (the benchmark harness) calls
// [Start], and [Cluster.Close] when done.
//
// It runs on Linux only (it finds sshd's processes in /proc); elsewhere,
// [Hosts] skips the test and [Start] returns [ErrUnsupported].
package sshtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Closed is the Host alias, in every [Cluster.Config], of a port on
// 127.0.0.1 that nothing listens on: ssh to it fails at once with
// "Connection refused". The port stays reserved (bound, not listening)
// until the test ends ([Cluster.Close]), so that nothing else can take it
// meanwhile.
const Closed = "closed"

// A Cluster is the sshd servers that [Hosts] or [Start] started, and the
// client configuration to reach them.
type Cluster struct {
	ssh          string // the ssh client's path
	config       string
	configNoKeys string
	knownHosts   string
	servers      map[string]*Server
	order        []*Server // as the names were given
	release      func()    // frees the Closed port

	closeOnce sync.Once
	closeErr  error
}

// tools are the OpenSSH programs a Cluster runs.
type tools struct {
	sshd, ssh, keygen string
}

// ErrUnsupported is the error of [Start] on a system other than Linux:
// sshtest finds sshd's processes in /proc.
var ErrUnsupported = errors.New("sshtest runs on Linux only (it reads /proc)")

// ErrMissing is the error of [Start] (wrapped, with what is missing and how
// to install it) when OpenSSH's server or client is not installed.
var ErrMissing = errors.New("sshtest: OpenSSH is missing")

// Hosts starts one sshd per name, as [Start] does, in a directory of the
// test's (t.TempDir). It skips the test when OpenSSH's server or client is
// missing, saying how to install it, except when the environment has
// CI=true, where that is a t.Fatal; it skips it on a system other than
// Linux. Everything is stopped (as [Cluster.Close] does) and removed with
// t.Cleanup; a failure to stop fails the test, and a failed test logs the
// end of each server's log.
func Hosts(t testing.TB, names ...string) *Cluster {
	t.Helper()
	c, err := Start(t.TempDir(), names...)
	switch {
	case errors.Is(err, ErrUnsupported):
		t.Skipf("%v, not on %s", err, runtime.GOOS)
	case errors.Is(err, ErrMissing):
		msg := err.Error() + ", to run the tests over ssh"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	case err != nil:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			for _, s := range c.order {
				t.Logf("sshtest: the end of %s's sshd log (%s):\n%s", s.name, s.log, tail(s.log))
			}
		}
	})
	return c
}

// Start starts one sshd per name (each on its own free port, each with its
// own host key) and writes one ssh_config with a Host entry per name, and
// one for [Closed]: the keys, configurations and logs go in dir (created
// if need be; Close does not remove it). It is [Hosts] without a test, for
// a program of its own (a benchmark): call [Cluster.Close] when done, also
// on error paths, or the servers outlive the program (each runs in a
// process group of its own).
//
// The servers start in parallel. A name is letters, digits, '.', '_' and
// '-'. When OpenSSH is missing, the error wraps [ErrMissing]; on a system
// other than Linux, it is [ErrUnsupported]. When one server fails to
// start, those that did are stopped before Start returns its error.
func Start(dir string, names ...string) (*Cluster, error) {
	if runtime.GOOS != "linux" {
		return nil, ErrUnsupported
	}
	tl, err := findTools()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, name := range names {
		if !validName(name) || name == Closed || seen[name] {
			return nil, fmt.Errorf("sshtest: bad or repeated host name %q (letters, digits, '.', '_', '-'; not %q)", name, Closed)
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
			return nil, fmt.Errorf("sshtest: creating sshd's privilege separation directory: %v", err)
		}
	}
	login, err := userName()
	if err != nil {
		return nil, fmt.Errorf("sshtest: the current user: %v", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}

	c := &Cluster{
		ssh:          tl.ssh,
		config:       filepath.Join(dir, "ssh_config"),
		configNoKeys: filepath.Join(dir, "ssh_config_no_host_keys"),
		knownHosts:   filepath.Join(dir, "known_hosts"),
		servers:      map[string]*Server{},
	}
	clientKey := filepath.Join(dir, "client_key")
	if err := keygen(tl.keygen, clientKey); err != nil {
		return nil, err
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		return nil, err
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o600); err != nil {
		return nil, err
	}
	closedPort, release, err := reservePort()
	if err != nil {
		return nil, fmt.Errorf("sshtest: reserving a closed port: %v", err)
	}
	c.release = release

	// Start every server at once: most of a start is sshd loading its
	// host key and binding, not this process.
	servers := make([]*Server, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			servers[i], errs[i] = start(tl, filepath.Join(dir, name), name, authorized)
		})
	}
	wg.Wait()
	for _, s := range servers {
		if s != nil {
			c.order = append(c.order, s)
			c.servers[s.name] = s
		}
	}
	// From here on, a failure stops whatever did start, also when another
	// server failed.
	fail := func(err error) (*Cluster, error) {
		return nil, errors.Join(err, c.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fail(err)
	}

	var known, hostsCfg strings.Builder
	for _, s := range c.order {
		key, err := hostKey(filepath.Join(dir, s.name, "host_key.pub"))
		if err != nil {
			return fail(err)
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
			return fail(err)
		}
	}
	return c, nil
}

// Close stops every server (as [Server.Stop] does), kills what their
// sessions started and waits for it to go, then frees the [Closed] port.
// It reports the sshd processes that outlived SIGKILL, if any. It may be
// called more than once, and concurrently: the calls after the first wait
// for it and return its error.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		var errs []error
		for _, s := range c.order {
			errs = append(errs, s.close())
		}
		if c.release != nil {
			c.release()
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// PIDs returns the process ids of the listening sshd servers, in the order
// of the names given to [Start]: each leads a process group of its own.
func (c *Cluster) PIDs() []int {
	var pids []int
	for _, s := range c.order {
		pids = append(pids, s.pid)
	}
	return pids
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
// name given to [Hosts] or [Start], and [Closed].
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

// Host returns the server of a name given to [Hosts] or [Start]; it panics
// for another name.
func (c *Cluster) Host(name string) *Server {
	s, ok := c.servers[name]
	if !ok {
		panic(fmt.Sprintf("sshtest: no host %q", name))
	}
	return s
}

// findTools finds OpenSSH's programs; the error wraps ErrMissing.
func findTools() (tools, error) {
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
		return tools{}, fmt.Errorf("%w: %s not found: install OpenSSH (Debian: apt-get install openssh-server openssh-client)", ErrMissing, strings.Join(missing, ", "))
	}
	return tl, nil
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
