package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/poold/poold"
	"github.com/poold/poold/internal/pool"
	"github.com/poold/poold/internal/remote"
	"github.com/poold/poold/internal/worker"
)

// The flags of workers started by a command line: --worker-cmd, and those
// on other machines, through ssh.

// sshEnv, like GNU parallel's PARALLEL_SSH, is the ssh command line to use
// when --ssh-command is not given.
const sshEnv = "POOLD_SSH"

// remoteFlags are the flags as given, checked by finish.
type remoteFlags struct {
	workerCmd   string
	ssh         []string // each --ssh
	sshFile     string
	sshCommand  string
	remotePoold string
}

func addRemoteFlags(fs *flag.FlagSet, rf *remoteFlags) {
	fs.StringVar(&rf.workerCmd, "worker-cmd", "", "start each worker with the `COMMAND` line (split as a shell would, no shell run) instead of this binary: a program that calls poold.Init (cmd/worker), or a launcher, e.g. 'srun -N1 -n1 --input=all poold worker'")
	fs.Func("ssh", "run workers on other machines through ssh: `HOSTS` is [N/]host[,...], N workers on host (default: its CPU count, or -n when given); : is this machine", func(s string) error {
		rf.ssh = append(rf.ssh, s)
		return nil
	})
	fs.StringVar(&rf.sshFile, "ssh-file", "", "read the --ssh hosts from `FILE`, one [N/]host a line, # for comments")
	fs.StringVar(&rf.sshCommand, "ssh-command", "", "the ssh program and its options as one `COMMAND` line, e.g. 'ssh -F FILE -p 2222' (default: $"+sshEnv+", else ssh); always with -T and BatchMode=yes")
	fs.StringVar(&rf.remotePoold, "remote-poold", "poold", "the poold program on the --ssh hosts, as `PATH` (a remote non-interactive shell's PATH is short: an absolute path is safest)")
}

// finish checks the flags into cfg: nWorkers says whether -n was given.
func (rf *remoteFlags) finish(cfg *config, nWorkers bool) error {
	if rf.workerCmd != "" {
		argv, err := remote.SplitCommand(rf.workerCmd, "--worker-cmd")
		if err != nil {
			return usagef("%v", err)
		}
		cfg.workerCmd = argv
	}
	for _, list := range rf.ssh {
		hs, err := remote.ParseHosts(list)
		if err != nil {
			return usagef("--ssh: %v", err)
		}
		cfg.hosts = append(cfg.hosts, hs...)
	}
	if rf.sshFile != "" {
		f, err := os.Open(rf.sshFile)
		if err != nil {
			return usagef("--ssh-file: %v", err)
		}
		hs, err := remote.ReadHosts(f, rf.sshFile)
		f.Close()
		if err != nil {
			return usagef("--ssh-file %v", err)
		}
		cfg.hosts = append(cfg.hosts, hs...)
	}
	if err := remote.Check(cfg.hosts); err != nil {
		return usagef("--ssh: %v", err)
	}
	if len(cfg.hosts) == 0 {
		if rf.sshCommand != "" {
			return usagef("--ssh-command without --ssh or --ssh-file: no host to run it for")
		}
		return nil
	}
	line, from := rf.sshCommand, "--ssh-command"
	if line == "" {
		line, from = os.Getenv(sshEnv), "$"+sshEnv
	}
	if line == "" {
		line = "ssh"
	}
	argv, err := remote.SplitCommand(line, from)
	if err != nil {
		return usagef("%v", err)
	}
	cfg.sshCommand = argv
	cfg.remoteWorker = []string{rf.remotePoold, "worker"}
	switch {
	case cfg.threads:
		return usagef("--ssh starts worker processes on other machines: it cannot go with --mode threads")
	case len(cfg.workerCmd) > 0:
		return usagef("--worker-cmd and --ssh both say how to start the workers: give one (the : host of --ssh runs this binary)")
	}
	if nWorkers {
		for i := range cfg.hosts {
			if cfg.hosts[i].Workers == 0 {
				cfg.hosts[i].Workers = cfg.workers // -n is the count of a host given without one
			}
		}
	}
	return nil
}

// sizeHosts gives each --ssh host without a count as many workers as its
// CPUs, asking the hosts at once (a connection each), and sets cfg.workers
// to the pool's size. A host that cannot be asked fails the run: it would
// not start workers either.
func sizeHosts(ctx context.Context, cfg *config, stderr io.Writer) error {
	if len(cfg.hosts) == 0 {
		return nil
	}
	errs := make([]error, len(cfg.hosts))
	var wg sync.WaitGroup
	for i := range cfg.hosts {
		h := &cfg.hosts[i]
		if h.Workers > 0 {
			continue
		}
		if h.Name == remote.Local {
			h.Workers = cfg.workers
			continue
		}
		wg.Go(func() {
			ph := pool.Host{Name: h.Name, Command: remote.SSHCommand(cfg.sshCommand, h.Name, cfg.remoteWorker)}
			n, err := pool.ProbeCPUs(ctx, pool.Config{StartTimeout: cfg.startTimeout}, ph)
			if err != nil {
				errs[i] = fmt.Errorf("host %s: %w", h.Name, err)
			}
			h.Workers = n
		})
	}
	wg.Wait()
	var failed []error
	cfg.workers = 0
	for i, err := range errs {
		if err != nil {
			failed = append(failed, err)
			cfg.hosts[i].Workers = 1 // the pool then fails to start it, and takes it out of rotation
		}
		cfg.workers += cfg.hosts[i].Workers
	}
	if len(failed) == len(cfg.hosts) {
		return fmt.Errorf("no host could be reached: %w", errors.Join(failed...))
	}
	for _, err := range failed {
		fmt.Fprintf(stderr, "poold: asking for its CPU count: %v\n", err)
	}
	return nil
}

// sshOption is the pool option of cfg's hosts, each with its count.
func sshOption(cfg *config) poold.Option {
	hosts := make([]string, len(cfg.hosts))
	for i, h := range cfg.hosts {
		hosts[i] = fmt.Sprintf("%d/%s", h.Workers, h.Name)
	}
	return poold.WithSSH(poold.SSH{Hosts: hosts, Command: cfg.sshCommand, Worker: cfg.remoteWorker})
}

// workerCommand is `poold worker`: the worker end of a pool, for launchers
// that carry only stdin, stdout and stderr (ssh, srun, docker run -i).
// It never returns to a caller that could go on: it takes over the
// process's descriptors.
func workerCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fmt.Fprint(stdout, worker.Explanation)
		return exitOK
	}
	if len(args) > 0 {
		fmt.Fprintf(stderr, "poold worker: takes no arguments, not %q: its parent sends its settings\n", strings.Join(args, " "))
		return exitUsage
	}
	return poold.ServeWorker(newRegistry())
}

// workerID names a worker process among those of every host.
type workerID struct {
	host string
	pid  int
}

// hostName is how output names a result's host: ":" for this machine, as
// GNU parallel's job log and --ssh do.
func hostName(h string) string {
	if h == "" {
		return remote.Local
	}
	return h
}

// hostColumn is the width of the table's HOST column: the longest host
// name when the workers run on more than one host, else 0 (no column).
func hostColumn(cfg *config) int {
	if len(cfg.hosts) < 2 {
		return 0
	}
	w := len("HOST")
	for _, h := range cfg.hosts {
		w = max(w, len(h.Name))
	}
	return w
}

// hostsSaid says where the workers run, for the header: "2 on hostA, 1 on
// :"; "" without --ssh.
func hostsSaid(cfg *config) string {
	parts := make([]string, len(cfg.hosts))
	for i, h := range cfg.hosts {
		parts[i] = fmt.Sprintf("%d on %s", h.Workers, h.Name)
	}
	return strings.Join(parts, ", ")
}
