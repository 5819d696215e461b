package integration_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poold/poold"
)

// workersOf waits up to d for n live workers of poold run c (processes of
// its tag whose parent is poold) and returns their pids.
func workersOf(t *testing.T, c *pooldCmd, n int, d time.Duration) []int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var pids []int
		for _, p := range liveProcs(c.tag) {
			if p.PPID == c.cmd.Process.Pid {
				pids = append(pids, p.PID)
			}
		}
		if len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers of poold after %v, want %d; stderr:\n%s", len(pids), d, n, c.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// childrenOf returns the live processes whose parent is one of pids.
func childrenOf(pids []int) []int {
	parents := map[int]bool{}
	for _, p := range pids {
		parents[p] = true
	}
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if parents[ppidOf(pid)] && alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// waitDead waits up to d for every one of pids to be gone; it returns those
// still alive.
func waitDead(pids []int, d time.Duration) []int {
	deadline := time.Now().Add(d)
	for {
		var left []int
		for _, p := range pids {
			if alive(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// busyTasks is a task file of n tasks that each run `sleep 30` through the
// exec task: the sleep process shows that the task is running.
func busyTasks(t *testing.T, n int) string {
	var tasks []task
	for i := range n {
		tasks = append(tasks, task{ID: fmt.Sprintf("busy-%d", i), Func: "exec", Args: map[string]any{"argv": []string{"sleep", "30"}}})
	}
	return writeTasks(t, tasks)
}

// TestSIGKILLPoold: SIGKILL to poold while its workers are busy leaves no
// worker running 1 s later.
func TestSIGKILLPoold(t *testing.T) {
	t.Parallel()
	c := startPoold(t, runOpts{}, "-n", "4", "--json", busyTasks(t, 4))
	workers := workersOf(t, c, 4, 10*time.Second)
	// Busy: each worker runs its sleep.
	deadline := time.Now().Add(10 * time.Second)
	var sleeps []int
	for len(sleeps) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 4 tasks started after 10 s", len(sleeps))
		}
		time.Sleep(5 * time.Millisecond)
		sleeps = childrenOf(workers)
	}
	t.Cleanup(func() {
		for _, p := range sleeps {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})

	c.cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	c.cmd.Wait()
	if left := waitDead(workers, time.Second); len(left) > 0 {
		t.Errorf("workers %v still running 1 s after poold was killed", left)
	}
	t.Logf("workers gone %v after SIGKILL to poold", time.Since(killed).Round(time.Millisecond))
	checkNoProcs(t, c.tag, 0)
}

// TestSIGKILLPooldTaskChildren: no orphans. What a task started dies with
// its worker (each worker leads its own process group, which is killed
// when the worker ends), also when the worker dies because poold was
// killed.
func TestSIGKILLPooldTaskChildren(t *testing.T) {
	t.Parallel()
	c := startPoold(t, runOpts{}, "-n", "2", "--json", busyTasks(t, 2))
	workers := workersOf(t, c, 2, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	var sleeps []int
	for len(sleeps) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 tasks started after 10 s", len(sleeps))
		}
		time.Sleep(5 * time.Millisecond)
		sleeps = childrenOf(workers)
	}
	t.Cleanup(func() {
		for _, p := range sleeps {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
	if left := waitDead(workers, time.Second); len(left) > 0 {
		t.Errorf("workers %v still running 1 s after poold was killed", left)
	}
	if left := waitDead(sleeps, time.Second); len(left) > 0 {
		t.Errorf("processes %v that tasks started (sleep 30) still running 1 s after poold and their workers were killed", left)
	}
}

// TestInterrupt: SIGINT or SIGTERM to poold mid-run: the finished results
// are printed, the unfinished ones reported with kind terminated, the
// status is 130 or 143, and no worker is left.
func TestInterrupt(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(unixSignalName(sig), func(t *testing.T) {
			t.Parallel()
			tasks := []task{echoTask("echo-0", 0), echoTask("echo-1", 1)}
			for i := range 3 {
				tasks = append(tasks, task{ID: fmt.Sprintf("sleep-%d", i), Func: "sleep", Args: map[string]any{"seconds": 30}})
			}
			c := startPoold(t, runOpts{}, "-n", "2", "--json", writeTasks(t, tasks))
			// Wait for the two quick results, then for the sleeps to start.
			for got := 0; got < 2; {
				select {
				case line, ok := <-c.lines:
					if !ok {
						t.Fatalf("poold ended early; stderr:\n%s", c.stderr)
					}
					if strings.Contains(line, `"echo-`) {
						got++
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("no echo results after 10 s; stderr:\n%s", c.stderr)
				}
			}
			workers := workersOf(t, c, 2, 10*time.Second)
			time.Sleep(200 * time.Millisecond)

			c.cmd.Process.Signal(sig)
			signalled := time.Now()
			r := c.wait(t)
			took := time.Since(signalled)
			if want := 128 + int(sig); r.Code != want {
				t.Errorf("exit status %d, want %d; stderr:\n%s", r.Code, want, r.Stderr)
			}
			if took > 3*time.Second {
				t.Errorf("poold took %v to exit after %v", took, sig)
			}
			if left := waitDead(workers, time.Second); len(left) > 0 {
				t.Errorf("workers %v still running 1 s after poold exited", left)
			}
			checkNoProcs(t, r.Tag, 0)

			recs := parseRecords(t, r.Stdout)
			if len(recs) != len(tasks) {
				t.Errorf("%d results, want %d; stdout:\n%s", len(recs), len(tasks), r.Stdout)
			}
			for i := range 2 {
				id := fmt.Sprintf("echo-%d", i)
				checkEcho(t, id, i, recs[id])
			}
			for i := range 3 {
				id := fmt.Sprintf("sleep-%d", i)
				rec := recs[id]
				if rec == nil || rec.ok() || rec.Error.Kind != "terminated" {
					t.Errorf("%s: %+v, want kind terminated", id, rec)
				}
			}
			if want := "interrupted by " + unixSignalName(sig); !strings.Contains(r.Stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, r.Stderr)
			}
		})
	}
}

func unixSignalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// TestSIGKILLEmbeddingProgram: a program that embeds a pool and is killed
// leaves no worker running 1 s later, whether the workers are idle or busy.
// The program is this test binary, run as a helper (see helperMain).
func TestSIGKILLEmbeddingProgram(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"idle", "busy"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			tag := newTag(t)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperVar+"="+mode, tagVar+"="+tag, "POOLD_ITEST_WORKER="+workerBin, debugEnv)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				cmd.Process.Kill()
				cmd.Wait()
				for _, p := range liveProcs(tag) {
					syscall.Kill(p.PID, syscall.SIGKILL)
				}
			})
			line := make(chan string, 1)
			go func() {
				s, _ := bufio.NewReader(out).ReadString('\n')
				line <- s
			}()
			var pids []int
			select {
			case s := <-line:
				for _, f := range strings.Fields(s) {
					pid, err := strconv.Atoi(f)
					if err != nil || pid == 0 {
						t.Fatalf("the helper printed %q, want worker pids", s)
					}
					pids = append(pids, pid)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the helper did not start its pool in 20 s")
			}
			if len(pids) != 3 {
				t.Fatalf("the helper has %d workers, want 3", len(pids))
			}
			for _, pid := range pids {
				if !alive(pid) || tagOf(pid) != tag {
					t.Fatalf("worker %d is not running", pid)
				}
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			if left := waitDead(pids, time.Second); len(left) > 0 {
				t.Errorf("workers %v still running 1 s after their parent was killed", left)
			}
		})
	}
}

// helperMain is the test binary as an embedding program: it starts a pool
// of 3 workers, makes them busy (mode "busy") or leaves them idle, prints
// their pids and waits to be killed.
func helperMain(mode string) int {
	ctx := context.Background()
	p, err := poold.New(ctx, poold.WithWorkers(3), poold.WithWorkerCommand(os.Getenv("POOLD_ITEST_WORKER")))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	if mode == "busy" {
		for range 3 {
			if _, err := p.ApplyAsync("sleep", map[string]any{"seconds": 30}); err != nil {
				fmt.Fprintln(os.Stderr, "helper:", err)
				return 1
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	var s []string
	for _, pid := range p.PIDs() {
		s = append(s, strconv.Itoa(pid))
	}
	fmt.Println(strings.Join(s, " "))
	time.Sleep(60 * time.Second) // the test kills it long before
	p.Terminate()
	return 0
}
