// Package conformance checks a worker program against poold's worker
// protocol, as docs/protocol.md specifies it: [Run] starts the program as
// a parent would, speaks to it with package ipc over its stdin and stdout,
// and fails the test where the worker breaks a rule. It is the arbiter of
// the spec: a worker in any language that passes it can serve a pool.
//
// Every step has a time limit, so that a broken worker fails the test
// rather than hanging it, and every process Run starts is gone (its whole
// process group killed) when the test ends.
package conformance

import (
	"testing"
	"time"
)

// Worker is a worker program to check.
type Worker struct {
	// Argv is its command line, run without a shell: the program itself,
	// not a launcher in front of it (its hello must give the pid Run
	// started).
	Argv []string
	// Env is added to the test process's environment. A worker that
	// reads POOLD_WORKER=5 from it may skip the setup (the env-marker
	// mode of poold's Go workers); any other must ask for one.
	Env []string
	// Fail is a call that the worker fails with kind Kind (and error type
	// Type, when not ""), the worker living on.
	Fail Call
}

// Call is one call of a task: its function, its arguments (encoded with
// msgpack by Run) and how it must fail.
type Call struct {
	Func string
	Args any
	Kind string
	Type string
}

// Time limits of the steps: generous, since other work may load the
// machine; a conforming worker takes milliseconds.
const (
	stepTimeout = 15 * time.Second // a hello, a result
	exitTimeout = 15 * time.Second // from EOF or garbage to the worker's exit
)

// Run checks w, each rule in a subtest of t: the hello and the setup
// handshake; one task of echo with values of every msgpack type; a chunk,
// in order, in one or more results; an eager chunk, a result per call;
// pipelined tasks, answered in order; an unknown function and a failing
// call, which fail alone; what a task prints, which must not reach the
// protocol; garbage from the parent, at which the worker exits non-zero
// without another frame; and the end of stdin, at which it exits 0 once
// it has answered every task. The worker must serve echo as poold's
// built-in does ({"value": V} → V); sleep ({"seconds": S}) and print
// ({"text": T, "times": N}), if its hello names them, are used too.
func Run(t *testing.T, w Worker) {
	t.Helper()
	if len(w.Argv) == 0 {
		t.Fatal("conformance: no command line")
	}
	t.Run("hello", func(t *testing.T) { checkHello(t, w) })
	t.Run("hello only", func(t *testing.T) { checkHelloOnly(t, w) })
	t.Run("echo", func(t *testing.T) { checkEcho(t, w) })
	t.Run("chunk", func(t *testing.T) { checkChunk(t, w) })
	t.Run("chunk as it goes", func(t *testing.T) { checkChunkAsItGoes(t, w) })
	t.Run("eager chunk", func(t *testing.T) { checkEager(t, w) })
	t.Run("pipelined", func(t *testing.T) { checkPipelined(t, w) })
	t.Run("unknown function", func(t *testing.T) { checkUnknown(t, w) })
	t.Run("task error", func(t *testing.T) { checkFail(t, w) })
	t.Run("print", func(t *testing.T) { checkPrint(t, w) })
	t.Run("stdin EOF", func(t *testing.T) { checkEOF(t, w) })
	t.Run("stdin EOF with a task running", func(t *testing.T) { checkEOFRunning(t, w) })
	for _, g := range garbage {
		t.Run("garbage/"+g.name, func(t *testing.T) { checkGarbage(t, w, g) })
	}
}
