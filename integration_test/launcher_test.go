package integration_test

import (
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// fakeSrun stands in for Slurm's srun, keeping its contract with poold:
// it takes the options a user would give (-N1 -n1 --input=all), runs the
// command as another process (a task on a node: not an exec of itself),
// passes the environment on (srun's --export=ALL) and stdin to the task
// (--input=all), carries no other descriptor, and passes TERM and INT on.
const fakeSrun = `#!/bin/sh
[ "$1" = -N1 ] && [ "$2" = -n1 ] && [ "$3" = --input=all ] || { echo "srun: error: unexpected options: $*" >&2; exit 1; }
shift 3
exec 3>&- 4>&-
exec 5<&0
"$@" <&5 5<&- &
task=$!
trap 'kill -TERM $task' TERM INT
wait $task
`

// TestSrunLauncher: --worker-cmd 'srun -N1 -n1 --input=all poold worker',
// with a script in srun's place: every result comes from a worker that
// the launcher started (its pid, not the launcher's), and a task that
// kills its worker fails alone, with worker_lost and the launcher named.
func TestSrunLauncher(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srun := writeFile(t, "srun", fakeSrun)
	if err := exec.Command("chmod", "+x", srun).Run(); err != nil {
		t.Fatal(err)
	}
	launcherRun(t, dir, runOpts{}, fmt.Sprintf("%s -N1 -n1 --input=all %s worker", srun, pooldBin), "as its srun (pid")
}

// launcherRun runs 20 echo tasks, a spy task and one that kills its
// worker through --worker-cmd workerCmd on 2 workers: every result must
// come from a worker the launcher started (the spy's pid is its worker's,
// not the launcher's), on this machine, and the killed worker's task alone
// fails, with worker_lost and a message that says lost.
func launcherRun(t *testing.T, dir string, o runOpts, workerCmd, lost string) {
	t.Helper()
	spy := filepath.Join(dir, "spy")
	tasks := []task{spyTask("spy", spy, 0), {ID: "kill", Func: "crash", Args: map[string]any{"mode": "kill"}}}
	for i := range 20 {
		tasks = append(tasks, echoTask(fmt.Sprintf("e%d", i), i))
	}
	r := runPoold(t, o, "-n", "2", "--json", "--start-timeout", "60s", "--worker-cmd", workerCmd, writeTasks(t, tasks))
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1 (one task kills its worker); stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	if len(recs) != len(tasks) {
		t.Fatalf("%d results, want %d", len(recs), len(tasks))
	}
	workerPID, _ := waitSpy(t, spy)
	if rec := recs["spy"]; rec == nil || !rec.ok() || rec.PID != workerPID {
		t.Errorf("spy: %+v; its worker's pid is %d", rec, workerPID)
	}
	for id, rec := range recs {
		switch {
		case id == "kill":
			if rec.ok() || rec.Error.Kind != "worker_lost" || !strings.Contains(rec.Error.Message, lost) {
				t.Errorf("kill: %+v, want worker_lost, saying %q", rec.Error, lost)
			}
			t.Logf("kill: %s", rec.Error.Message)
		case !rec.ok():
			t.Errorf("%s failed: %+v", id, rec.Error)
		case rec.Host != ":":
			t.Errorf("%s: host %q, want : (this machine)", id, rec.Host)
		}
	}
}

// TestWorkerOnATerminal: `poold worker` run by hand on a terminal says
// what it is and exits 1, instead of waiting for frames nobody will send.
func TestWorkerOnATerminal(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(pooldBin, "worker")
	f, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(f) // EIO once the worker is gone
		out <- string(b)
	}()
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case <-waitErr:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-waitErr
		t.Fatal("poold worker on a terminal did not exit")
	}
	var text string
	select { // what is left on the terminal, then EIO
	case text = <-out:
	case <-time.After(10 * time.Second):
		f.Close()
		text = <-out
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, w := range []string{"worker end of a pool", "poold --ssh", "poold worker"} {
		if !strings.Contains(text, w) {
			t.Errorf("it does not say %q:\n%s", w, text)
		}
	}
	// Asked for help, it explains itself and exits 0; with arguments it
	// cannot take, 2.
	r := runPoold(t, runOpts{}, "worker", "--help")
	if r.Code != 0 || !strings.Contains(r.Stdout, "worker end of a pool") {
		t.Errorf("poold worker --help: exit %d:\n%s", r.Code, r.Stdout)
	}
	r = runPoold(t, runOpts{}, "worker", "-n", "4")
	if r.Code != 2 || !strings.Contains(r.Stderr, "takes no arguments") {
		t.Errorf("poold worker -n 4: exit %d:\n%s", r.Code, r.Stderr)
	}
}
