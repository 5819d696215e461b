// Package slurmtest runs a one-node Slurm cluster for a test: munged,
// slurmctld and slurmd, started by the test as its own child processes (no
// systemd, no files in /etc), so that srun can launch workers on the local
// machine.
//
// It installs nothing: it needs Debian's slurm-wlm and munge packages
// (apt-get install slurm-wlm munge) and root, since slurmd runs as root.
// Without them Start skips the test, except under CI=true, where it fails.
//
// What srun does with the bytes, as measured on Slurm 22.05 (Debian 12):
//
//   - srun -N1 -n1 --input=all -u CMD passes stdin and stdout through
//     unchanged and at once: a frame without a newline arrives as soon as it
//     is written. Without -u (--unbuffered) slurmstepd holds the task's
//     stdout back until a newline, so binary frames stall.
//   - With -u the task's stdout is a pseudo-terminal, not a pipe (isatty(1)
//     is true; its output processing is off, so no byte is changed); stdin
//     and stderr stay pipes. srun adds nothing to stdout: its own messages
//     go to stderr.
//   - SIGKILL of srun: srun's shepherd process cancels the job, and the
//     task is killed (gone within about 0.1 s).
//   - SIGTERM or SIGHUP of srun: srun prints "forcing job termination" and
//     the task is killed with SIGKILL, not sent SIGTERM; srun exits 137.
//     SIGUSR1 and SIGUSR2 are forwarded to the task. One SIGINT only prints
//     the step's status; a second within a second aborts it.
package slurmtest

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
	"syscall"
	"testing"
	"time"
)

// NodeName is the name of the cluster's one node (srun -w NodeName).
const NodeName = "n1"

// Cluster is a running one-node cluster. Its daemons stop when the test that
// started it ends.
type Cluster struct {
	dir   string
	conf  string
	srun  string
	env   []string
	procs []*proc // in start order: munged, slurmctld, slurmd
}

type proc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid after done is closed
}

// Start installs nothing; it starts munged, slurmctld and slurmd for a
// one-node cluster in t.TempDir(), waits until the node is idle, and
// returns the cluster, whose Env (SLURM_CONF=...) srun needs. It skips when
// slurm or munge is missing, or without root, except under CI=true, where
// that is a t.Fatal. The daemons are stopped by PID in t.Cleanup (after the
// cluster's jobs are cancelled) and waited for.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bins := map[string]string{}
	var missing []string
	for _, name := range []string{"munged", "slurmctld", "slurmd", "srun", "sinfo", "squeue", "scancel"} {
		p, err := lookPath(name)
		if err != nil {
			missing = append(missing, name)
			continue
		}
		bins[name] = p
	}
	if len(missing) > 0 {
		unavailable(t, fmt.Sprintf("%s not found: apt-get install slurm-wlm munge", strings.Join(missing, ", ")))
	}
	if os.Geteuid() != 0 {
		unavailable(t, "slurmd must run as root for srun to launch tasks: run the test as root")
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatalf("slurmtest: hostname: %v", err)
	}
	host, _, _ = strings.Cut(host, ".") // slurmctld compares SlurmctldHost with the short name

	dir := t.TempDir()
	for _, d := range []string{"state", "spool", "munge"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatalf("slurmtest: %v", err)
		}
	}
	// munged wants its socket's directory, and every one above it, to be
	// searchable by all; t.TempDir's are 0700. A short path of its own also
	// keeps the socket under the 108-byte limit of a Unix socket's name.
	sockDir, err := os.MkdirTemp("", "munge")
	if err != nil {
		t.Fatalf("slurmtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	if err := os.Chmod(sockDir, 0o755); err != nil {
		t.Fatalf("slurmtest: %v", err)
	}
	sock := filepath.Join(sockDir, "socket")

	key := make([]byte, 128)
	if _, err := rand.Read(key); err != nil {
		t.Fatalf("slurmtest: %v", err)
	}
	keyFile := filepath.Join(dir, "munge", "munge.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatalf("slurmtest: %v", err)
	}

	ports := freePorts(t, 2)
	conf := filepath.Join(dir, "slurm.conf")
	if err := os.WriteFile(conf, []byte(slurmConf(dir, host, sock, ports[0], ports[1])), 0o644); err != nil {
		t.Fatalf("slurmtest: %v", err)
	}

	c := &Cluster{dir: dir, conf: conf, srun: bins["srun"], env: environ(conf)}
	t.Cleanup(func() { c.stop(t) })

	c.start(t, "munged", bins["munged"], "--foreground", "--force",
		"--socket="+sock, "--key-file="+keyFile,
		"--pid-file="+filepath.Join(dir, "munge", "munged.pid"),
		"--log-file="+filepath.Join(dir, "munge", "munged.log"),
		"--seed-file="+filepath.Join(dir, "munge", "munged.seed"))
	c.waitFor(t, 10*time.Second, "munged's socket", func() bool {
		fi, err := os.Stat(sock)
		return err == nil && fi.Mode()&os.ModeSocket != 0
	})
	c.start(t, "slurmctld", bins["slurmctld"], "-D", "-i")
	c.start(t, "slurmd", bins["slurmd"], "-D", "-N", NodeName)
	c.waitFor(t, 60*time.Second, "node "+NodeName+" idle", func() bool {
		out, err := c.command(bins["sinfo"], "-h", "-n", NodeName, "-o", "%T").Output()
		return err == nil && strings.TrimSpace(string(out)) == "idle"
	})
	return c
}

// Env is the environment for srun and the other Slurm clients: the
// process's own, less any SLURM_ variable (a test run inside a Slurm job
// must not reach that job's cluster), plus SLURM_CONF naming this cluster's
// configuration.
func (c *Cluster) Env() []string { return append([]string(nil), c.env...) }

// Srun is srun's absolute path.
func (c *Cluster) Srun() string { return c.srun }

// Conf is the path of the cluster's slurm.conf.
func (c *Cluster) Conf() string { return c.conf }

func unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal("slurmtest: " + msg + " (CI=true: the Slurm tests must run)")
	}
	t.Skip("slurmtest: " + msg)
}

// lookPath finds a program on PATH or in the sbin directories, which a
// user's PATH may lack.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

func environ(conf string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLURM_") {
			env = append(env, kv)
		}
	}
	return append(env, "SLURM_CONF="+conf)
}

// freePorts returns n TCP ports that were free a moment ago. Slurm binds its
// ports itself, so there is a short race with other processes; ports from
// the kernel's ephemeral range make a clash unlikely.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("slurmtest: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func slurmConf(dir, host, sock string, ctldPort, dPort int) string {
	// No cgroups (none may be delegated to a container): processes are
	// tracked through /proc, and tasks are neither bound nor confined.
	return fmt.Sprintf(`ClusterName=slurmtest
SlurmctldHost=%[2]s(127.0.0.1)
SlurmctldPort=%[3]d
SlurmdPort=%[4]d
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=%[5]s
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
ReturnToService=2
MailProg=/bin/true
StateSaveLocation=%[1]s/state
SlurmdSpoolDir=%[1]s/spool
SlurmctldPidFile=%[1]s/slurmctld.pid
SlurmdPidFile=%[1]s/slurmd.pid
SlurmctldLogFile=%[1]s/slurmctld.log
SlurmdLogFile=%[1]s/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=%[6]s NodeHostname=%[2]s NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
`, dir, host, ctldPort, dPort, sock, NodeName)
}

func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = c.env
	cmd.Dir = c.dir
	return cmd
}

func (c *Cluster) start(t testing.TB, name, path string, args ...string) {
	t.Helper()
	log := filepath.Join(c.dir, name+".out")
	f, err := os.Create(log)
	if err != nil {
		t.Fatalf("slurmtest: %v", err)
	}
	defer f.Close()
	cmd := c.command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // no terminal signal reaches it
	if err := cmd.Start(); err != nil {
		t.Fatalf("slurmtest: starting %s: %v", name, err)
	}
	p := &proc{name: name, log: log, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	c.procs = append(c.procs, p)
}

// waitFor polls ok until it holds, failing the test (with the daemons'
// output) if a daemon exits first or the time runs out.
func (c *Cluster) waitFor(t testing.TB, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		for _, p := range c.procs {
			select {
			case <-p.done:
				c.logOutput(t)
				t.Fatalf("slurmtest: %s exited (%v) while waiting for %s", p.name, p.err, what)
			default:
			}
		}
		if time.Now().After(deadline) {
			c.logOutput(t)
			t.Fatalf("slurmtest: no %s after %v", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) logOutput(t testing.TB) {
	t.Helper()
	for _, p := range c.procs {
		b, _ := os.ReadFile(p.log)
		t.Logf("%s output:\n%s", p.name, tail(b, 4000))
	}
	for _, name := range []string{"slurmctld.log", "slurmd.log"} {
		if b, err := os.ReadFile(filepath.Join(c.dir, name)); err == nil {
			t.Logf("%s:\n%s", name, tail(b, 4000))
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b
}

// stop cancels the cluster's jobs (slurmstepd outlives slurmd), then stops
// the daemons in reverse order by PID: SIGTERM, and SIGKILL after 10 s.
func (c *Cluster) stop(t testing.TB) {
	t.Helper()
	if len(c.procs) == 3 {
		if scancel, err := lookPath("scancel"); err == nil {
			c.command(scancel, "--user=root").Run()
		}
		if squeue, err := lookPath("squeue"); err == nil {
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				out, err := c.command(squeue, "-h", "-o", "%i").Output()
				if err != nil || len(bytes.TrimSpace(out)) == 0 {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("slurmtest: %s (pid %d) still running 10 s after SIGTERM: killing it", p.name, p.cmd.Process.Pid)
			p.cmd.Process.Kill()
			<-p.done
		}
		var ee *exec.ExitError
		if p.err != nil && !(errors.As(p.err, &ee) && exitedOnTerm(ee)) {
			b, _ := os.ReadFile(p.log)
			t.Logf("slurmtest: %s ended: %v\n%s", p.name, p.err, tail(b, 2000))
		}
	}
}

// exitedOnTerm reports whether a daemon's exit is the expected one for
// SIGTERM: killed by it, or exited with status 0.
func exitedOnTerm(ee *exec.ExitError) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ((ws.Signaled() && ws.Signal() == syscall.SIGTERM) || ws.ExitStatus() == 0)
}

// pids returns the daemons' process IDs, for the test of cleanup.
func (c *Cluster) pids() map[string]int {
	m := map[string]int{}
	for _, p := range c.procs {
		m[p.name] = p.cmd.Process.Pid
	}
	return m
}
