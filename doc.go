// Package poold is a multi-process worker pool: Python's
// multiprocessing.Pool for Go, with real OS processes.
//
// A program registers its task functions, calls [Init] at the top of main,
// and creates a [Pool]. The pool starts copies of the program's own binary
// in worker mode; they run the tasks and answer over pipes in length-prefixed
// msgpack frames. Every [Result] says which worker process ran it.
//
//	var reg = poold.NewRegistry()
//	var square = poold.Register(reg, "square", func(ctx context.Context, x int) (int, error) {
//		return x * x, nil
//	})
//
//	func main() {
//		poold.Init(reg) // in a worker, serves tasks and exits; otherwise returns
//		p, err := poold.New(ctx, poold.WithWorkers(4))
//		...
//		r, err := square.Apply(ctx, p, 7) // r.Value == 49, r.PID is the worker's
//		p.Close()
//		p.Join(ctx)
//	}
//
// A task that panics, exits, is killed by a signal, hangs past its time limit
// or eats memory takes down only its own worker: that task fails with a
// [TaskError] naming the worker's PID and how it ended, the pool replaces the
// worker, and no other task is lost. Every submitted task gets exactly one
// result.
//
// A task error's [Kind] says why it failed, and is itself an error:
// errors.Is(err, poold.KindWorkerLost) tests it. When the worker process
// ended under the task, the error's Exit field is a [WorkerExitError] with
// the exit code or signal and the worker's last stderr lines, which
// errors.As also finds. The pool's own failures are the Err variables
// ([ErrPoolClosed], ...).
//
// [New] takes [Option] values ([WithWorkers], [WithTimeout], ...); each call
// takes [CallOption] values ([Timeout], [ChunkSize], [OnSuccess],
// [OnMapSuccess], ...). A callback that panics is recovered and logged,
// and its result's error is a [CallbackError].
//
// The verbs are Python's: [Pool.Apply], [Pool.ApplyAsync], [Pool.Map],
// [Pool.MapAsync], [Pool.IMap], [Pool.IMapUnordered], [Pool.Close],
// [Pool.Terminate], [Pool.Join]; the typed [Func] has the same ones. Beside
// them, [Pool.IMapErr] and [Pool.IMapUnorderedErr] take an input that can
// fail midway.
//
// [WithThreads] gives the same pool, verbs and results with goroutines of
// the calling process as its workers, as Python's multiprocessing.dummy
// does with threads: cheaper to start and to reach, and able to run far more
// workers than there are CPUs for tasks that mostly wait, without the
// isolation (a task that exits or segfaults ends the process). Run a
// program both ways and keep the faster; the poold command's "poold
// compare" does it for a task file.
package poold
