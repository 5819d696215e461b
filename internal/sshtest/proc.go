package sshtest

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// A proc is a process as /proc showed it (Linux only).
type proc struct {
	pid  int
	ppid int
	pgid int
	comm string
	// start is the process's start time (clock ticks since boot): with
	// pid, it tells the process from a later one that reuses the pid.
	start uint64
}

func (p proc) String() string { return fmt.Sprintf("%d (%s)", p.pid, p.comm) }

// readProc reads /proc/PID/stat; ok is false when there is no such
// process.
func readProc(pid int) (p proc, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, 0, false
	}
	// "pid (comm) state ppid pgrp session ... starttime ...": comm may hold
	// spaces and parentheses, the last ')' ends it.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return proc{}, 0, false
	}
	f := bytes.Fields(b[end+1:])
	if len(f) < 20 {
		return proc{}, 0, false
	}
	p.pid = pid
	p.comm = string(b[open+1 : end])
	p.ppid, _ = strconv.Atoi(string(f[1]))
	p.pgid, _ = strconv.Atoi(string(f[2]))
	p.start, _ = strconv.ParseUint(string(f[19]), 10, 64)
	return p, f[0][0], true
}

// descendants returns the processes under root: its children, theirs, and
// so on, as /proc shows them now.
func descendants(root int) []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]proc{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, _, ok := readProc(pid); ok {
			children[p.ppid] = append(children[p.ppid], p)
		}
	}
	var out []proc
	next := []int{root}
	for len(next) > 0 {
		pid := next[0]
		next = next[1:]
		for _, c := range children[pid] {
			out = append(out, c)
			next = append(next, c.pid)
		}
	}
	return out
}

// withEnv returns the processes whose environment holds the string
// NAME=VALUE kv (among those this process may read).
func withEnv(kv string) []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(append([]byte{0}, env...), []byte("\x00"+kv+"\x00")) {
			continue
		}
		if p, _, ok := readProc(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

// alive reports whether the process still runs: it exists, is the same
// process (same start time), and is not a zombie.
func (p proc) alive() bool {
	now, state, ok := readProc(p.pid)
	return ok && now.start == p.start && state != 'Z'
}

// signal sends sig to the process, if it still runs.
func (p proc) signal(sig syscall.Signal) {
	if p.alive() {
		syscall.Kill(p.pid, sig)
	}
}

// signalGroup sends sig to the process group that the process led, and to
// the process. The group may outlive its leader; its id cannot be reused
// while it has a member.
func (p proc) signalGroup(sig syscall.Signal) {
	if p.pgid == p.pid {
		syscall.Kill(-p.pid, sig)
	}
	p.signal(sig)
}

// waitStopped waits (up to a second) until the process pid is stopped by
// a signal, or gone (a zombie, or done closed): kill(2) returns before the
// signal takes effect.
func waitStopped(pid int, done <-chan struct{}) {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if _, state, ok := readProc(pid); !ok || state == 'T' || state == 'Z' {
			return
		}
		select {
		case <-done:
			return
		case <-time.After(time.Millisecond):
		}
	}
}
