// Command worker is a standalone poold worker: a program that serves the
// built-in poold tasks to a pool that starts it. Pools normally re-execute
// their own binary as workers; this program is for when that binary cannot
// serve (a pool embedded in a program that does not call poold.Init at the
// top of main, say), or to run the workers from a separate build:
//
//	poold --worker-cmd /path/to/worker tasks.json
//	poold.New(ctx, poold.WithWorkerCommand("/path/to/worker"))
//	poold --worker-cmd 'srun -N1 -n1 --input=all -u /path/to/worker worker' tasks.json
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/poold/poold"
)

func main() {
	reg := poold.NewRegistry()
	poold.RegisterBuiltins(reg)
	if len(os.Args) == 2 && os.Args[1] == "worker" {
		// Started by a command line (ssh, srun, docker run -i), as
		// `poold worker` is: its settings come from the parent.
		os.Exit(poold.ServeWorker(reg))
	}
	// Started by a pool, Init serves tasks until the pool is done with this
	// process, then exits; it returns only in a process a pool did not start.
	poold.Init(reg)
	fmt.Fprint(os.Stderr, explanation(reg.Names()))
	os.Exit(1)
}

func explanation(tasks []string) string {
	return `This is a poold worker: it runs tasks (` + strings.Join(tasks, ", ") + `)
for a poold pool, which starts it and speaks a binary protocol with it over
its standard input and output. It is not meant to be run by hand.

A pool starts it when told to use it as its worker program:

  poold --worker-cmd /path/to/worker tasks.json
  poold.New(ctx, poold.WithWorkerCommand("/path/to/worker"))   // from Go

Started any other way, it prints this message and exits with status 1.
`
}
