package main

// (8) rows 8c-8e: the whole poold command with --ssh, beside the same
// command on local workers and beside GNU parallel -S with the same sshd.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/poold/poold/internal/sshtest"
)

// cliRun is one run of a whole command.
type cliRun struct {
	wall time.Duration // from exec to exit
	// span is from the first task's start to the last task's end, as the
	// workers' clocks say (poold --json): the run without its start-up.
	span time.Duration
}

// sshCLI measures rows 8c, 8d and 8e: n echo tasks through the poold
// command, with --ssh and on local workers, reps times each, interleaved;
// then GNU parallel -S once.
func (h *harness) sshCLI(c *sshtest.Cluster, reps int) ([]Row, error) {
	na := func(note string) []Row { return sshRows(note)[2:5] }
	bin, err := h.buildPoold()
	if errors.Is(err, exec.ErrNotFound) {
		return na("skipped: no go command to build the poold command with"), nil
	}
	if err != nil {
		return nil, err
	}

	n := h.size(1000, 20)
	file := filepath.Join(h.tmp, "echo.json")
	tasks := make([]map[string]any, n)
	for i := range tasks {
		tasks[i] = map[string]any{"func": "echo", "args": map[string]any{"value": i}}
	}
	b, err := json.Marshal(tasks)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		return nil, err
	}
	sshCmd := shellJoin(c.SSH())
	hosts := "2/" + sshHost
	sshArgs := []string{"--ssh", hosts, "--ssh-command", sshCmd, "--remote-poold", bin, "--json", file}
	localArgs := []string{"-n", "2", "--json", file}

	// A first run of each, not counted (but under -smoke): the page cache,
	// and sshd's first connections.
	for _, args := range [][]string{sshArgs, localArgs} {
		if h.smoke {
			break
		}
		if _, err := h.pooldCLI(bin, n, args); err != nil {
			return nil, err
		}
	}
	var sshWall, sshSpan, localWall, localSpan []float64
	for range reps {
		r, err := h.pooldCLI(bin, n, sshArgs)
		if err != nil {
			return nil, err
		}
		sshWall, sshSpan = append(sshWall, ms(r.wall)), append(sshSpan, us(r.span)/float64(n))
		if r, err = h.pooldCLI(bin, n, localArgs); err != nil {
			return nil, err
		}
		localWall, localSpan = append(localWall, ms(r.wall)), append(localSpan, us(r.span)/float64(n))
	}
	h.logf("poold --ssh %s --json, %d echo tasks: whole command %s ms; in the run %s µs a task", hosts, n, spread(sshWall, f1), spread(sshSpan, f1))
	h.logf("poold -n 2 --json, the same file: whole command %s ms; in the run %s µs a task", spread(localWall, f1), spread(localSpan, f1))

	// GNU parallel opens a connection per job (~0.4 s here, 2 at once):
	// 1,000 jobs would take minutes, so fewer, and one run.
	jobs := h.size(100, 2)
	parRate, parJob := naFig, naFig
	parNote := "GNU parallel is not installed (apt-get install parallel): skipped"
	if path, err := exec.LookPath("parallel"); err == nil {
		args := []string{"--will-cite", "-S", hosts, "--ssh", sshCmd, "true", ":::"}
		for i := range jobs {
			args = append(args, strconv.Itoa(i+1))
		}
		ctx, cancel := context.WithTimeout(h.ctx, 5*time.Minute)
		t0 := time.Now()
		out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
		wall := time.Since(t0)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("parallel -S %s: %v: %s", hosts, err, lastLine(string(out)))
		}
		h.logf("parallel -S %s --ssh '%s' true ::: $(seq %d): %.1f s, %s ms a job", hosts, sshCmd, jobs, wall.Seconds(), f1(ms(wall)/float64(jobs)))
		parRate = newFig(float64(jobs)/wall.Seconds(), func(x float64) string { return fmt.Sprintf("%.2f/s", x) })
		parJob = newFig(us(wall)/float64(jobs), func(x float64) string { return fmtMS(x / 1e3) })
		parNote = fmt.Sprintf("parallel: `parallel -S %s --ssh 'ssh -F CONFIG' true ::: $(seq %d)`, one run of %d jobs (a connection each: %d jobs would take ~%.0f s)",
			hosts, jobs, jobs, n, wall.Seconds()*float64(n)/float64(jobs))
	}

	sshFig := newFig(median(sshSpan), fmtUS)
	e := "GNU parallel's wall time ÷ its jobs, 2 at once: a connection per job; poold: 8d's figure, one connection per worker for the whole run"
	if !math.IsNaN(parJob.v) {
		e += fmt.Sprintf("; a job through parallel -S costs %s× a task through poold --ssh", commas(parJob.v/sshFig.v))
		h.logf("per task: poold --ssh %s µs, parallel -S %s ms a job: parallel ÷ poold %s×", f1(sshFig.v), f1(parJob.v/1e3), commas(parJob.v/sshFig.v))
	}
	const maxRatio = 2.0
	return []Row{
		mkRow("8c", "poold --ssh, whole command, tasks/s", newFig(float64(n)/(median(sshWall)/1e3), fmtRate), "parallel -S "+hosts, parRate, nil,
			fmt.Sprintf("poold: `poold --ssh %s --ssh-command 'ssh -F CONFIG' --remote-poold POOLD --json FILE` of %d echo tasks, output to a file, whole command (%s ms: start-up and 2 connections included; `poold -n 2` on local workers: %s ms); %s",
				hosts, n, f1(median(sshWall)), f1(median(localWall)), parNote)),
		mkRow("8d", "poold --ssh, per task in the run", sshFig, "poold -n 2, the same file", newFig(median(localSpan), fmtUS), ratioAtMost(maxRatio),
			fmt.Sprintf("from the first task's start to the last task's end (the --json start and end) ÷ %d tasks, 2 workers: a task through ssh costs the pipe's round trip, not a connection's (target: within %g× of local workers)", n, maxRatio)),
		mkRow("8e", "poold --ssh, per task in the run", sshFig, "parallel -S, per job", parJob, nil, e),
	}, nil
}

// pooldCLI runs the poold command bin with args on n tasks, its JSON Lines
// to a file, and checks that every task succeeded.
func (h *harness) pooldCLI(bin string, n int, args []string) (cliRun, error) {
	outPath := filepath.Join(h.tmp, "poold-out.jsonl")
	f, err := os.Create(outPath)
	if err != nil {
		return cliRun{}, err
	}
	defer f.Close()
	ctx, cancel := h.timeout()
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = f, &stderr
	t0 := time.Now()
	err = cmd.Run()
	wall := time.Since(t0)
	if err != nil {
		return cliRun{}, fmt.Errorf("poold %s: %v: %s", strings.Join(args, " "), err, lastLine(stderr.String()))
	}
	span, err := taskSpan(outPath, n)
	if err != nil {
		return cliRun{}, fmt.Errorf("poold %s: %w", strings.Join(args, " "), err)
	}
	return cliRun{wall: wall, span: span}, nil
}

// taskSpan reads poold's --json output: n successful tasks, and the time
// from the first start to the last end.
func taskSpan(path string, n int) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var first, last time.Time
	ok := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			OK    bool   `json:"ok"`
			Start string `json:"start"`
			End   string `json:"end"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return 0, fmt.Errorf("a --json line: %v: %q", err, sc.Text())
		}
		if !rec.OK {
			return 0, fmt.Errorf("a task failed: %s", sc.Text())
		}
		start, err1 := time.Parse(time.RFC3339Nano, rec.Start)
		end, err2 := time.Parse(time.RFC3339Nano, rec.End)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("a --json line without start and end: %s", sc.Text())
		}
		if first.IsZero() || start.Before(first) {
			first = start
		}
		if end.After(last) {
			last = end
		}
		ok++
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if ok != n {
		return 0, fmt.Errorf("%d results, want %d", ok, n)
	}
	return last.Sub(first), nil
}

// shellJoin joins argv into one command line that a shell (and poold's
// --ssh-command) splits back into argv.
func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@") == "" {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}
