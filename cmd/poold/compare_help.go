package main

import (
	"fmt"
	"io"
)

const compareUsageHead = `usage: poold compare [flags] TASKFILE

Runs TASKFILE in both modes, worker processes (--mode processes) and
threads (--mode threads: goroutines of one process), and says which to
keep: which was faster and by how much, whether the difference is within
noise, whether the work was CPU-bound or waiting, and what the processes'
isolation cost.

Each run is a process of its own: this program, run as
  poold --mode MODE -n N --json [the flags below] -- TASKFILE
so that a task that ends its process (crash's segfault or exit, which in
threads mode take the whole run) costs only that run: that mode is then
reported as having lost its process, with the results it printed first,
and the other is reported in full. Every run is waited for; a SIGINT or
SIGTERM is passed on to the run in progress, and no other starts.

The tasks run 2 × R times per count of -n (R: --reps): a task with side
effects has them each time. compare refuses a file with exec tasks unless
--yes is given.

Flags (one or two dashes both work):
`

// printCompareUsage prints compare's help.
func printCompareUsage(w io.Writer) {
	fmt.Fprint(w, compareUsageHead)
	fs, _ := compareFlags(&compareConfig{}, false)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, `
compare refuses --max-worker-memory, --max-tasks-per-worker and
--worker-cmd, which cannot hold in threads mode, and --mode, --joblog,
--resume, --resume-failed, -q and --progress (status 2).

What each run measures (a column per mode, a table per count):
  wall time            from the start of the run's process to its end
                       (reading the file and starting the workers included)
  CPU time             user + sys of the run's process and of every process
                       it waited for (wait4's rusage): in processes mode the
                       workers, in both the programs exec tasks ran; split
                       into poold's own and its child processes'
  utilisation          see below
  peak memory          poold's own (its VmHWM, which each run reports as it
                       exits: POOLD_USAGE_FD, in the README); its largest
                       child process's (a worker, in processes mode); and
                       all its processes' together. The last two are
                       sampled from /proc every 200 ms: the largest VmHWM
                       seen, and the largest sum of resident sets seen
                       (pages that processes share, such as the program's
                       code, count once per process). Without /proc (not
                       Linux), getrusage's ru_maxrss: upper bounds
  tasks per second     results ÷ wall time
  results, failures    from the run's --json lines, failures by "kind"
Each column shows the median run of its mode, by wall time (the lower
median of an even --reps), every figure from that same run.

`)
	fmt.Fprint(w, wrap("Noise: "+noiseRule+".", 0, helpWidth))
	fmt.Fprint(w, wrap("Utilisation: "+utilisationRule+".", 0, helpWidth))
	fmt.Fprint(w, wrap("Keep: the faster mode beyond noise; processes when the difference is within noise "+
		"(as fast, and a crash costs one task); the other mode when one lost its process.", 0, helpWidth))
	fmt.Fprint(w, `
--json prints one object:
  file, tasks, cpus, reps
  counts[]: one per count of -n:
    n, workers (n, or fewer for a JSON file of fewer tasks)
    processes, threads: the median run of each mode:
      runs (that reached their end), wall_ms, wall_min_ms, wall_max_ms,
      cpu_ms (user_ms + sys_ms, workers included), parent_cpu_ms and
      children_cpu_ms (absent when the run lost its process),
      utilisation (0 to 1), parent_peak_bytes, child_peak_bytes,
      total_peak_bytes (all processes), memory_sampled (false: no /proc,
      and the figures are getrusage's upper bounds), tasks_per_second,
      results, ok, failed, failures {kind: count}, and when the mode lost
      its process lost {how, signal or exit_status, results, tasks,
      stderr [its last lines]}
    verdict: faster ("processes" or "threads"; "" when a mode lost its
      process), ratio (slower ÷ faster wall time), within_noise, work
      ("cpu-bound", "mixed" or "waiting"), utilisation, judged_on (the
      mode), isolation {wall_ms, cpu_ms, cpu_within_noise, memory_bytes:
      what processes cost over threads; negative: saved}, keep, text
  fastest, interrupted (the signal, when one stopped compare), exit_status,
  noise_rule, utilisation_rule

Exit status: 0 when every run of both modes reached its end and every task
succeeded; 1 when a task failed, or a mode lost its process; 2 for a usage
or task-file error, or exec tasks without --yes (nothing is run); 130 or
143 when interrupted by SIGINT or SIGTERM.
`)
}
