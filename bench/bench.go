// Package bench measures poold against the alternatives a user would pick
// instead, and against the physical limit of a Go parent talking to copies
// of its own binary over pipes.
//
// The comparison harness is the command bench/cmd/compare (run it from the
// repository root: go run ./bench/cmd/compare; see bench/README.md). This
// package holds what the harness and the go test benchmarks share: the task
// registry both binaries serve as their own workers, and the Python side of
// the comparison, embedded so that the harness needs no file outside the
// repository at run time.
package bench

import (
	"context"
	_ "embed"
	"math"

	"github.com/poold/poold"
)

// Registry holds the built-in tasks (primes, exec, …) and Ident. Every
// binary that uses it must call poold.Init(Registry) first thing in main (or
// in TestMain), so that it can serve as its own worker.
var Registry = poold.NewRegistry()

// Ident is the trivial task: it returns its argument. It is the Go twin of
// the Python side's ident(x).
var Ident = poold.Register(Registry, "ident", func(_ context.Context, x int64) (int64, error) { return x, nil })

func init() { poold.RegisterBuiltins(Registry) }

// PrimesArgs are the arguments of the built-in task "primes": it counts the
// primes p with From ≤ p ≤ N by trial division.
type PrimesArgs struct {
	N    int64 `json:"n"`
	From int64 `json:"from,omitempty"`
}

// ExecArgs are the arguments of the built-in task "exec".
type ExecArgs struct {
	Argv []string `json:"argv"`
}

// ExecResult is the part of the result of "exec" the harness checks.
type ExecResult struct {
	ExitCode int    `json:"exit_code"`
	Signal   string `json:"signal,omitempty"`
}

// PrimeRanges splits [0, n) in k ranges of about equal cost, the way the
// Python side does: trial division up to x costs about x^1.5 in all, so
// range i ends at n·((i+1)/k)^(2/3). Equal widths would leave the last range
// the dearest and cap any pool's speed-up well below 2. Each range is given
// as the inclusive bounds "primes" takes.
func PrimeRanges(n, k int64) []PrimesArgs {
	out := make([]PrimesArgs, k)
	lo := int64(0)
	for i := range k {
		hi := int64(float64(n) * math.Pow(float64(i+1)/float64(k), 2.0/3))
		if i == k-1 {
			hi = n
		}
		out[i] = PrimesArgs{From: lo, N: hi - 1}
		lo = hi
	}
	return out
}

// PoolBenchPy is bench/py/pool_bench.py: the Python workloads. The harness
// writes it to a temporary file and runs it with the real interpreter.
//
//go:embed py/pool_bench.py
var PoolBenchPy []byte

// CmdPoolPy is bench/py/cmd_pool.py: the poold command's job (read a task
// file, run each echo task, print a JSON line per result) done with
// multiprocessing.Pool, which the harness times as a whole process.
//
//go:embed py/cmd_pool.py
var CmdPoolPy []byte
