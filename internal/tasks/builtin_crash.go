package tasks

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CrashArgs are the arguments of "crash", a task that misbehaves on purpose
// so that the pool's handling of failures can be exercised. Mode is one of:
//
//	panic     a Go panic; the worker recovers it and lives on
//	exit      os.Exit(Code); Code is 0 to 255, 1 if absent
//	kill      SIGKILL to its own process
//	segfault  a real SIGSEGV: the process dies by the signal
//	abort     a real SIGABRT, as C's abort()
//	fatal     a Go fatal error (unlocking an unlocked mutex): exit status 2
//	          and "fatal error:" on stderr (SIGABRT under GOTRACEBACK=crash)
//	hang      blocks forever, deaf to cancellation
//	oom       allocates and touches memory without bound
//	protocol  writes garbage on the worker's protocol stream, then hangs
//
// The modes that end the process write a line naming themselves to stderr
// first, and segfault and abort turn core dumps off.
type CrashArgs struct {
	Mode string `json:"mode" default:"required" doc:"panic, exit, kill, segfault, abort, fatal, hang, oom or protocol"`
	Code *int   `json:"code,omitempty" default:"1" doc:"the exit code of mode exit, from 0 to 255"`
}

func (CrashArgs) about() (string, string) {
	return "misbehave on purpose, to see how the pool copes",
		"none: panic fails the task with kind panic; the other modes end or " +
			"hang the worker (kind worker_lost, protocol; hang and oom need a time " +
			"or memory limit: kind timeout, memory_limit)"
}

var crashModes = []string{"abort", "exit", "fatal", "hang", "kill", "oom", "panic", "protocol", "segfault"}

// protocolGarbage is what mode "protocol" writes: a frame header claiming
// 4 GiB, then text, so that a reader fails at once, allocating nothing.
const protocolGarbage = "\xff\xff\xff\xffpoold crash task: this is not a frame\n"

func crashTask(ctx context.Context, a CrashArgs) (struct{}, error) {
	// Check everything before misbehaving, so that bad arguments are an
	// ordinary error.
	if !slices.Contains(crashModes, a.Mode) {
		return struct{}{}, BadArgs("field \"mode\": want one of %s, got %q", strings.Join(crashModes, ", "), a.Mode)
	}
	code := 1
	if a.Code != nil {
		if a.Mode != "exit" {
			return struct{}{}, BadArgs("field \"code\" is only for mode \"exit\"")
		}
		code = *a.Code
	}
	if code < 0 || code > 255 {
		return struct{}{}, BadArgs("field \"code\": want an exit code from 0 to 255, got %d", code)
	}
	proto := ProtocolStream(ctx)
	if a.Mode == "protocol" && proto == nil {
		return struct{}{}, BadArgs("mode \"protocol\" needs the worker's protocol stream, and this context has none")
	}

	if a.Mode != "panic" && a.Mode != "hang" {
		fmt.Fprintf(os.Stderr, "poold crash task: mode %s\n", a.Mode)
	}
	switch a.Mode {
	case "panic":
		panic("poold crash task: deliberate panic")
	case "exit":
		os.Exit(code)
	case "kill":
		if err := syscall.Kill(os.Getpid(), syscall.SIGKILL); err != nil {
			return struct{}{}, err
		}
	case "segfault":
		return struct{}{}, segfault()
	case "abort":
		return struct{}{}, dieBy(syscall.SIGABRT)
	case "fatal":
		var mu sync.Mutex
		mu.Unlock() // a fatal error, which recover cannot catch
	case "oom":
		hoard()
	case "protocol":
		if _, err := proto.Write([]byte(protocolGarbage)); err != nil {
			return struct{}{}, err
		}
	}
	hang() // "hang", "protocol", and the others if they somehow return
	panic("unreachable")
}

// hang blocks for ever, ignoring ctx. A sleeping loop rather than select{}:
// with a timer pending, the runtime never declares a deadlock.
func hang() {
	for {
		time.Sleep(time.Hour)
	}
}

// hoarded keeps hoard's chunks: a package variable, so that they stay
// reachable whatever the compiler makes of the loop.
var hoarded [][]byte

// hoard allocates memory in 64 MiB chunks for ever, writing to every page
// so that it is really used (fresh pages are otherwise only reserved), and
// keeps every chunk. Something else must kill the process: the pool's
// memory watchdog, or the kernel.
func hoard() {
	page := os.Getpagesize()
	for {
		c := make([]byte, 64<<20)
		for i := 0; i < len(c); i += page {
			c[i] = 1
		}
		hoarded = append(hoarded, c)
	}
}
