// Package pool is the supervisor of a multi-process worker pool: it starts
// worker processes, hands them tasks over pipes, notices when one dies,
// replaces it, and makes sure that every submitted task gets exactly one
// outcome. The worker's side of the pipes is package worker; the bytes on
// them are package ipc's.
//
// Every task has exactly one owner at a time: the queue, the in-flight list
// of one worker, or (once settled) the caller. A worker's in-flight list is
// therefore exactly the set of tasks to fail or queue again when it dies.
//
// # One task, hop by hop
//
// The root package's ApplyAsync encodes the argument into a [Task] of one
// call (Map and IMap build the same shape, a chunk of many calls whose
// arguments lie back to back), resolves its time limit and retries, and
// calls [Pool.Submit]:
//
//  1. Submit (submit.go), under Pool.mu: checks that the arguments are
//     well-formed and fit in a frame, cuts a chunk too big for one frame,
//     gives the task a job id and appends it to the queue.
//  2. dispatchLocked (dispatch.go), still under Pool.mu: gives the head of
//     the queue to an idle worker, or, for a function whose calls have
//     proved short, to the least loaded busy worker whose pipe has room.
//     The task joins that worker's in-flight list (the head is the job it
//     runs; its deadline timer is armed in deadline.go) and its outbox.
//  3. unlockAndFlush (write.go): releases Pool.mu, then flush writes the
//     outbox to the worker's stdin, on the submitter's own goroutine:
//     one frame, usually one write(2). flush is the only code that writes a
//     worker's pipe; concurrent flushers coalesce through a TryLock.
//  4. The worker (package worker) reads the frame, runs each call with a
//     context, captures what it printed, and writes one result frame for
//     the job before it reads the next one.
//  5. readLoop (read.go), the worker's reader goroutine, reads the result.
//     onResult, under Pool.mu, checks that it answers the head job, takes
//     the job off the in-flight list, learns how long the function takes
//     (to pipeline short ones), queues again the calls that timed out and
//     may retry, and dispatches the next jobs. Then, with Pool.mu released,
//     each call's [Outcome] (value, worker PID and slot, attempts, times,
//     output) is delivered to the task's Each, or stored in Task.Outcome;
//     Done follows the last call. The reader flushes the jobs it dispatched
//     once no more results are buffered, so one write carries a burst.
//  6. The root package decodes the value and builds its Result.
//
// A chunk's calls may come back in several results (the worker writes its
// finished calls before the next once a millisecond has passed, or before
// every call for an AtMostOnce task): takeLocked checks that each goes on
// where the last ended, and the job leaves the in-flight list with its
// last call.
//
// When a worker dies instead, its stdout ends: readLoop reaps it, reads
// where it was (the job and call it recorded in memory shared with the
// parent, see Conn.Progress), and onExit (lifecycle.go) hands its jobs to
// settleLostLocked (settle.go): the running call fails with the kind the
// pool blamed (timeout, memory_limit, protocol, canceled) or worker_lost,
// or is queued again under its retries; calls of the chunk that ran but
// whose results were lost run again and count it; calls that never started
// go back to the queue uncounted, as do the jobs behind the head. The slot
// gets a new worker.
//
// Cancel (cancel.go) fails queued calls at once, and sends a worker a
// cancel frame on its control stream for a job it was given: the worker
// cancels the running call's context and skips calls not yet started; a
// kill after the grace ends a task that ignores it.
//
// # Seams
//
// A [Launcher] starts workers: today the exec launcher re-executes this
// binary (or Config.Command) in its own process group; a command line
// through ssh or srun fits the same interface, and the tests launch the
// worker loop in a goroutine over os.Pipe. An [Outcome] carries the host
// and PID of the worker that ran the call.
//
// Config.Events (and ThreadsConfig.Events) is an observer of the pool's
// life (events.go): each worker that said hello (and whom it replaces in
// its slot), each that was reaped (how it ended, whom the pool blamed), and
// each attempt of each call, told where the pool first sees it: onResult,
// for every item of a result, those that will be retried included, before
// they are delivered; onExit, for the call a dead worker was running. It is
// called with no lock held; without it the hot path pays a nil check. A
// reaped worker's events are told before the pool counts as exited, so
// that an observer finished after Join has heard them all.
package pool
