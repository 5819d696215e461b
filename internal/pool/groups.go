package pool

import (
	"fmt"
	"os"
	"strings"
)

// Host is a set of worker slots that one launcher fills: the workers of
// one host. A pool of several hosts takes a host out of rotation when it
// fails to start a worker more than Config.StartRetries times in a row; its
// slots stay empty, and the other hosts' workers take the tasks. The pool
// gives up once every host is out.
type Host struct {
	Name    string   // where its workers run, as results name it: "" for this machine
	Workers int      // slots, at least 1
	Command []string // the worker program and its arguments; empty: Config.Command
}

// group is a Host as a pool runs it. Guarded by Pool.mu.
type group struct {
	Host
	launcher Launcher
	failures int   // consecutive failed starts
	startErr error // the last failed start
	out      bool  // out of rotation: no worker is started for its slots again
}

// groupsOf resolves cfg's groups: one group of cfg.Workers on this machine
// by default.
func groupsOf(cfg Config) ([]*group, error) {
	gs := cfg.Hosts
	if len(gs) == 0 {
		gs = []Host{{Workers: cfg.Workers}}
	}
	out := make([]*group, len(gs))
	for i, g := range gs {
		if g.Workers < 1 {
			return nil, fmt.Errorf("host %q: workers must be at least 1, not %d", g.Name, g.Workers)
		}
		if len(g.Command) == 0 {
			g.Command = cfg.Command
		}
		out[i] = &group{Host: g, launcher: cfg.Launcher}
		if out[i].launcher == nil {
			out[i].launcher = &execLauncher{command: g.Command, env: cfg.Env, host: g.Name, spawner: newSpawner()}
		}
	}
	return out, nil
}

func (p *Pool) groupOfLocked(slot int) *group { return p.groups[p.slots[slot].group] }

// liveSlotsLocked is the number of slots of the groups still in rotation.
func (p *Pool) liveSlotsLocked() int {
	n := 0
	for _, g := range p.groups {
		if !g.out {
			n += g.Workers
		}
	}
	return n
}

// gaveUpLocked: workers keep failing to start on every host; the pool has
// stopped trying.
func (p *Pool) gaveUpLocked() bool {
	for _, g := range p.groups {
		if !g.out {
			return false
		}
	}
	return true
}

// closeLaunchers releases every group's launcher (one shared launcher once).
func (p *Pool) closeLaunchers() {
	seen := map[Launcher]bool{}
	for _, g := range p.groups {
		if !seen[g.launcher] {
			seen[g.launcher] = true
			g.launcher.Close()
		}
	}
}

// takeOutLocked takes g out of rotation after its last failed start, saying
// so once: the other groups go on.
func (p *Pool) takeOutLocked(g *group) {
	g.out = true
	if len(p.groups) == 1 {
		return // the pool gives up: its error says why
	}
	left := make([]string, 0, len(p.groups))
	for _, x := range p.groups {
		if !x.out {
			left = append(left, cmpHost(x.Name))
		}
	}
	msg := fmt.Sprintf("host %s is out of rotation after %d failed starts in a row (%v); its %d slots stay empty", cmpHost(g.Name), g.failures, g.startErr, g.Workers)
	if len(left) > 0 {
		msg += "; its tasks go to " + strings.Join(left, ", ")
	} else {
		msg += "; no host is left: the tasks not yet run fail with kind start"
	}
	p.log.Warn(msg)
}

// cmpHost names a host in messages: ":" for this machine, as GNU parallel does.
func cmpHost(h string) string {
	if h == "" {
		return ":"
	}
	return h
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
