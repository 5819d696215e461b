package poold

import (
	"context"
	"runtime"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold/internal/pool"
	"github.com/poold/poold/internal/remote"
	"github.com/poold/poold/internal/worker"
)

// SSH says where the workers of a pool run when they run on other
// machines, started through OpenSSH (see [WithSSH]).
type SSH struct {
	// Hosts are "[N/]host" entries: N workers on host (an ssh_config alias,
	// user@host), or, without N, as many as the host's CPUs, which New asks
	// it first with one connection; ":" is this machine, whose workers are
	// started as without WithSSH.
	Hosts []string
	// Command is the ssh program and its options ("ssh", "-F", "FILE");
	// default: ssh. It always runs with -T and BatchMode=yes: no terminal,
	// no prompt. Host keys are checked as the user's ssh configuration says.
	Command []string
	// Worker is the worker's command line on each host, which ssh hands to
	// the remote user's shell; default: poold worker. It needs a poold of
	// this protocol version there, or a program that calls [ServeWorker].
	Worker []string
}

// WithSSH runs the pool's workers on the hosts of s, each through its own
// long-lived ssh connection: a task costs a round trip on the connection,
// not a connection. Every result says its host ([Result.Host]). A worker
// whose connection is lost fails its task with kind worker_lost, as a
// crash does, and is started again with back-off; a host where workers
// fail to start several times in a row is taken out of rotation, with one
// warning in the log, and the other hosts run the tasks. A remote worker
// ends its tasks' processes when its connection ends, and limits its own
// memory (WithMaxWorkerMemory). WithWorkers is ignored.
func WithSSH(s SSH) Option {
	return optionFunc(func(c *config) error {
		if len(s.Hosts) == 0 {
			return errorf("WithSSH needs at least one host")
		}
		for _, entry := range s.Hosts {
			hs, err := remote.ParseHosts(entry)
			if err != nil {
				return errorf("WithSSH: %v", err)
			}
			c.hosts = append(c.hosts, hs...)
		}
		if err := remote.Check(c.hosts); err != nil {
			return errorf("WithSSH: %v", err)
		}
		c.ssh = append([]string(nil), s.Command...)
		if len(c.ssh) == 0 {
			c.ssh = []string{"ssh"}
		}
		c.remoteWorker = append([]string(nil), s.Worker...)
		if len(c.remoteWorker) == 0 {
			c.remoteWorker = []string{"poold", "worker"}
		}
		return nil
	})
}

// ServeWorker runs this process as a worker started by a command line,
// not by a pool's environment: what `poold worker` does, for a program of
// your own that a pool starts through ssh, srun or a container runtime
// (see [SSH.Worker]): call it when your program is run so, and exit with
// what it returns. It speaks the protocol on standard input and output at
// once, asking its parent for its settings; it returns when its input
// ends, and ends its process group if its parent goes away. On a
// terminal it explains itself and returns 1.
func ServeWorker(reg *Registry) int { return worker.ServeStdio(reg.r) }

// poolHosts resolves the hosts of WithSSH into the pool's: the command
// line of each, and the number of workers of each host given without one,
// asked of the hosts at once. A host that cannot be asked gets one slot:
// the pool then fails to start its worker, and says so, as it would
// later.
func (c *config) poolHosts(ctx context.Context, cfg pool.Config) []pool.Host {
	out := make([]pool.Host, len(c.hosts))
	var wg sync.WaitGroup
	for i, h := range c.hosts {
		ph := pool.Host{Name: h.Name, Workers: h.Workers}
		if h.Name == remote.Local {
			ph.Name = ""
			if ph.Workers == 0 {
				ph.Workers = runtime.NumCPU()
			}
			out[i] = ph
			continue
		}
		ph.Command = remote.SSHCommand(c.ssh, h.Name, c.remoteWorker)
		out[i] = ph
		if ph.Workers > 0 {
			continue
		}
		wg.Go(func() {
			n, err := pool.ProbeCPUs(ctx, cfg, ph)
			if err != nil {
				c.logOrNull().Warn("could not ask a host for its CPU count; it gets one worker", "host", h.Name, "error", err)
				n = 1
			}
			out[i].Workers = n
		})
	}
	wg.Wait()
	return out
}

func (c *config) logOrNull() hclog.Logger {
	if c.logger == nil {
		return hclog.NewNullLogger()
	}
	return c.logger
}
