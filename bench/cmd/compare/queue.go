package main

// (10) parent memory against the number of queued tasks: a fresh child of
// the harness submits N ApplyAsync of a task that does not end (sleep for
// an hour) on 2 workers and reports its memory before and after; its
// workers are killed at the end (Terminate), and the harness runs it in a
// process group of its own (runGroup).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/poold/poold"
	"github.com/poold/poold/bench"
)

const queueNEnv = "POOLD_BENCH_QUEUE_N"

// queueReport is what a queue child prints: byte counts before and after
// the N submissions, each read after a collection that returns what it can
// to the OS (debug.FreeOSMemory).
type queueReport struct {
	N          int     `json:"n"`
	RSS0       int64   `json:"rss0"` // VmRSS, bytes; negative without /proc
	RSS1       int64   `json:"rss1"`
	HeapInuse0 uint64  `json:"heap_inuse0"`
	HeapInuse1 uint64  `json:"heap_inuse1"`
	Sys0       uint64  `json:"sys0"` // runtime.MemStats.Sys: all the Go runtime got from the OS
	Sys1       uint64  `json:"sys1"`
	SubmitSecs float64 `json:"submit_secs"`
}

// sleepArgs are the arguments of the built-in task sleep.
type sleepArgs struct {
	Seconds float64 `json:"seconds"`
}

func queueChild() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "queue child:", err)
		return 1
	}
	n, err := strconv.Atoi(os.Getenv(queueNEnv))
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := poold.New(ctx, poold.WithWorkers(2))
	if err != nil {
		return fail(err)
	}
	defer p.Terminate()
	if _, err := bench.Ident.Map(ctx, p, make([]int64, 8), poold.ChunkSize(1)); err != nil {
		return fail(err)
	}
	rep := queueReport{N: n}
	var ms runtime.MemStats
	debug.FreeOSMemory()
	runtime.ReadMemStats(&ms)
	rep.RSS0, rep.HeapInuse0, rep.Sys0 = procStatusKiB("VmRSS")<<10, ms.HeapInuse, ms.Sys
	rs := make([]*poold.AsyncResult[poold.Raw], n)
	t0 := time.Now()
	for i := range rs {
		if rs[i], err = p.ApplyAsync("sleep", sleepArgs{Seconds: 3600}); err != nil {
			return fail(err)
		}
	}
	rep.SubmitSecs = time.Since(t0).Seconds()
	debug.FreeOSMemory()
	runtime.ReadMemStats(&ms)
	rep.RSS1, rep.HeapInuse1, rep.Sys1 = procStatusKiB("VmRSS")<<10, ms.HeapInuse, ms.Sys
	for _, a := range rs[:min(n, 16)] {
		if a.Ready() {
			return fail(fmt.Errorf("a task of an hour's sleep is done: %v", a.Wait(ctx)))
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return fail(err)
	}
	runtime.KeepAlive(rs)
	return 0
}

// queueRun runs one fresh queue child for n tasks.
func (h *harness) queueRun(n int) (queueReport, error) {
	var rep queueReport
	out, err := h.childOutput([]string{childEnv + "=queue", queueNEnv + "=" + strconv.Itoa(n)})
	if err != nil {
		return rep, err
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return rep, fmt.Errorf("queue child n=%d: bad output %q: %v", n, out, err)
	}
	return rep, nil
}

// perTask is the growth from a to b, divided among n tasks.
func perTask[T int64 | uint64](a, b T, n int) float64 { return (float64(b) - float64(a)) / float64(n) }
