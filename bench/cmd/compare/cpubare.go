package main

// The machine's own limit for workload 4: the built-in task "primes" run by
// plain copies of the harness binary, without poold. One child runs all 8
// ranges; then two run 4 each at once. Their speed-up is what these two
// cores give this code, whatever runs it.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/poold/poold/bench"
	"github.com/poold/poold/internal/tasks"
)

// primesArgsEnv holds the ranges, as JSON, for a "primes" child.
const primesArgsEnv = "POOLD_BENCH_PRIMES"

// primesChild counts the primes in the ranges of primesArgsEnv with the
// built-in task's own code, and prints the count.
func primesChild() int {
	var ranges []bench.PrimesArgs
	if err := json.Unmarshal([]byte(os.Getenv(primesArgsEnv)), &ranges); err != nil {
		fmt.Fprintln(os.Stderr, "primes child:", err)
		return 2
	}
	reg := tasks.NewRegistry()
	tasks.RegisterBuiltins(reg)
	fn, _ := reg.Lookup("primes")
	// Ready; start when told, so that process start-up is not timed.
	os.Stdout.Write([]byte{'R'})
	var go1 [1]byte
	if _, err := os.Stdin.Read(go1[:]); err != nil {
		return 2
	}
	total := 0
	for _, r := range ranges {
		args, err := tasks.Marshal(r)
		if err != nil {
			fmt.Fprintln(os.Stderr, "primes child:", err)
			return 2
		}
		out, err := fn(context.Background(), args, nil)
		var n int
		if err == nil {
			err = tasks.Unmarshal(out, &n)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "primes child:", err)
			return 2
		}
		total += n
	}
	fmt.Println(total)
	return 0
}

// barePrimes runs the ranges split among procs child processes at once
// (range i to child i % procs, as 2 free workers would share them) and
// returns the wall time until all are done, and the count.
func barePrimes(ranges []bench.PrimesArgs, procs int) (time.Duration, int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	parts := make([][]bench.PrimesArgs, procs)
	for i, r := range ranges {
		parts[i%procs] = append(parts[i%procs], r)
	}
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*bufio.Reader, procs)
	ins := make([]io.WriteCloser, procs)
	for i, part := range parts {
		js, _ := json.Marshal(part)
		c := exec.Command(self)
		c.Env = append(os.Environ(), childEnv+"=primes", primesArgsEnv+"="+string(js))
		c.Stderr = os.Stderr
		in, err := c.StdinPipe()
		if err != nil {
			return 0, 0, err
		}
		out, err := c.StdoutPipe()
		if err != nil {
			return 0, 0, err
		}
		if err := c.Start(); err != nil {
			return 0, 0, err
		}
		defer c.Wait()
		defer in.Close()
		cmds[i], ins[i], outs[i] = c, in, bufio.NewReader(out)
		if b, err := outs[i].ReadByte(); err != nil || b != 'R' {
			return 0, 0, fmt.Errorf("primes child not ready: %v", err)
		}
	}
	// Timed from the moment all are told to start: process start-up is
	// workload 5's business, not this one's.
	var wg sync.WaitGroup
	lines := make([]string, procs)
	errs := make([]error, procs)
	t0 := time.Now()
	for i := range cmds {
		ins[i].Write([]byte{'G'})
	}
	for i := range cmds {
		wg.Go(func() { lines[i], errs[i] = outs[i].ReadString('\n') })
	}
	wg.Wait()
	dt := time.Since(t0)
	count := 0
	for i := range cmds {
		if errs[i] != nil {
			return 0, 0, fmt.Errorf("primes child: %w", errs[i])
		}
		var n int
		if _, err := fmt.Sscan(lines[i], &n); err != nil {
			return 0, 0, fmt.Errorf("primes child printed %q", lines[i])
		}
		count += n
	}
	return dt, count, nil
}
