package main

// (8) workers on another machine through ssh, here one sshd of the
// harness's own on 127.0.0.1 (internal/sshtest): one-at-a-time throughput
// and round trip beside local workers, and the poold command with --ssh
// beside GNU parallel -S with the same server (sshcli.go).

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/poold/poold"
	"github.com/poold/poold/internal/sshtest"
)

// sshHost is the one host of the workload: an sshd on 127.0.0.1.
const sshHost = "hostA"

// poolWindow is how many tasks a poold worker behind ssh gets in flight at
// most, once its tasks prove short: internal/pool's Config.MaxWindow
// default (16) times its remoteWindow (4).
const poolWindow = 64

// workerArg, as the harness's first argument, makes it a remote worker
// (poold.ServeWorker): the command line that rows 8a and 8b start through
// ssh.
const workerArg = "worker"

// sshRows are the workload's rows, as n/a with note when it cannot run.
func sshRows(note string) []Row {
	na := func(id, what, label string) Row {
		return mkRow(id, what, naFig, label, naFig, nil, note)
	}
	return []Row{
		na("8a", "ssh: one at a time, tasks/s", "2 local workers (as 1a)"),
		na("8b", "ssh: round trip p50", "1 local worker"),
		na("8c", "poold --ssh, whole command, tasks/s", "parallel -S 2/"+sshHost),
		na("8d", "poold --ssh, per task in the run", "poold -n 2, the same file"),
		na("8e", "poold --ssh, per task in the run", "parallel -S, per job"),
		na("8f", "ssh: one at a time, tasks/s", "msgpack limit through ssh, 2 children"),
		na("8g", "ssh: one at a time, tasks/s", fmt.Sprintf("the same limit, %d in flight", poolWindow)),
		na("8h", "ssh: round trip p50", "msgpack ping-pong through ssh p50"),
	}
}

func runSSH(h *harness) (rows []Row, err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c, err := sshtest.Start(filepath.Join(h.tmp, "sshd"), sshHost)
	switch {
	case errors.Is(err, sshtest.ErrUnsupported):
		return sshRows("skipped: " + err.Error()), nil
	case errors.Is(err, sshtest.ErrMissing):
		return sshRows("skipped: " + err.Error()), nil
	case err != nil:
		return nil, err
	}
	h.logf("sshd for %s on 127.0.0.1 port %d (pid %d), ssh config %s", sshHost, c.Host(sshHost).Port(), c.Host(sshHost).PID(), c.Config())
	// The servers run in process groups of their own: stop them on every
	// way out, a signal to the harness included.
	stopSignals := closeOnSignal(c)
	defer func() {
		stopSignals()
		if cerr := c.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("stopping sshd: %w", cerr))
		}
	}()

	connect, err := sshConnectTime(h, c)
	if err != nil {
		return nil, err
	}
	h.logf("one connection, `ssh -F CONFIG %s true`: %s ms", sshHost, spread(connect, f1))

	viaSSH := func(workers int) mode {
		return mode{"ssh", []poold.Option{poold.WithSSH(poold.SSH{
			Hosts:   []string{fmt.Sprintf("%d/%s", workers, sshHost)},
			Command: c.SSH(),
			Worker:  []string{self, workerArg},
		})}}
	}
	reps := h.nreps(3)

	// 8a: row 1a's workload, interleaved rep by rep with 2 local workers.
	n := h.size(100_000, 2_000)
	var sshRates, localRates []float64
	for range reps {
		r, err := h.applyAsyncRate(viaSSH(2), n)
		if err != nil {
			return nil, fmt.Errorf("through ssh: %w", err)
		}
		sshRates = append(sshRates, r)
		if r, err = h.applyAsyncRate(processes, n); err != nil {
			return nil, err
		}
		localRates = append(localRates, r)
	}
	h.logf("poold ApplyAsync x%d then Get all, 2 workers through ssh: %s tasks/s", n, spread(sshRates, commas))
	h.logf("poold ApplyAsync x%d then Get all, 2 local workers: %s tasks/s", n, spread(localRates, commas))
	// The limit through ssh: row 1d's ping-pong children, started through
	// the same ssh.
	via := append(c.SSH(), "-T", "-o", "BatchMode=yes", sshHost)
	ppN := h.size(200_000, 5_000)
	ppRate, err := pingPongVia(via, 2, 64, ppN/2, ppN/20, reps, false, true)
	if err != nil {
		return nil, fmt.Errorf("ping-pong through ssh: %w", err)
	}
	h.logf("msgpack ping-pong through ssh, 64 in flight, 2 children writing each reply alone: %s round trips/s", commas(ppRate.rate))
	// The same with as many in flight as poold keeps on a worker at most.
	ppWin, err := pingPongVia(via, 2, poolWindow, ppN/2, ppN/20, reps, false, true)
	if err != nil {
		return nil, fmt.Errorf("ping-pong through ssh: %w", err)
	}
	h.logf("msgpack ping-pong through ssh, %d in flight, 2 children writing each reply alone: %s round trips/s", poolWindow, commas(ppWin.rate))

	// 8b: row 3a's workload on 1 worker, through ssh and local.
	ln, warm := h.size(10_000, 200), h.size(500, 20)
	var sshP50, sshP99, localP50, localP99 []float64
	for range reps {
		p50, p99, err := h.applyLatency(viaSSH(1), 1, ln, warm)
		if err != nil {
			return nil, fmt.Errorf("through ssh: %w", err)
		}
		sshP50, sshP99 = append(sshP50, p50), append(sshP99, p99)
		if p50, p99, err = h.applyLatency(processes, 1, ln, warm); err != nil {
			return nil, err
		}
		localP50, localP99 = append(localP50, p50), append(localP99, p99)
	}
	h.logf("poold Apply x%d, 1 worker through ssh: p50 %s µs, p99 %s µs", ln, spread(sshP50, f1), spread(sshP99, f1))
	h.logf("poold Apply x%d, 1 local worker: p50 %s µs, p99 %s µs", ln, spread(localP50, f1), spread(localP99, f1))
	ppRT, err := pingPongVia(via, 1, 1, ln, warm, reps, false, false)
	if err != nil {
		return nil, fmt.Errorf("ping-pong through ssh: %w", err)
	}
	h.logf("msgpack ping-pong through ssh, window 1: p50 %s µs, p99 %s µs", f1(ppRT.p50), f1(ppRT.p99))

	cli, err := h.sshCLI(c, reps)
	if err != nil {
		return nil, err
	}

	sshNote := fmt.Sprintf("the harness as its own remote worker (`%s %s`, poold.ServeWorker) through one ssh connection per worker to an sshd on 127.0.0.1; a connection (`ssh %s true`) takes %s ms here", filepath.Base(self), workerArg, sshHost, f1(median(connect)))
	rows = []Row{
		mkRow("8a", "ssh: one at a time, tasks/s", newFig(median(sshRates), fmtRate), "2 local workers (as 1a)", newFig(median(localRates), fmtRate), nil,
			fmt.Sprintf("%d ApplyAsync then Get all (row 1a's workload) on 2/%s, interleaved rep by rep with 2 local workers; %s", n, sshHost, sshNote)),
		mkRow("8b", "ssh: round trip p50", newFig(median(sshP50), fmtUS), "1 local worker", newFig(median(localP50), fmtUS), nil,
			fmt.Sprintf("%d sequential Apply (row 3a's workload) on 1/%s beside 1 local worker, interleaved; p99 %s µs through ssh, %s µs local",
				ln, sshHost, f1(median(sshP99)), f1(median(localP99)))),
	}
	rows = append(rows, cli...)
	return append(rows,
		mkRow("8f", "ssh: one at a time, tasks/s", newFig(median(sshRates), fmtRate), "msgpack limit through ssh, 2 children", newFig(ppRate.rate, fmtRate), nil,
			"the limit of 8a: row 1d's ping-pong (2 copies of the harness echoing 50-byte msgpack frames, 64 in flight, each reply written alone), the children started through the same ssh, one connection each"),
		mkRow("8g", "ssh: one at a time, tasks/s", newFig(median(sshRates), fmtRate), fmt.Sprintf("the same limit, %d in flight", poolWindow), newFig(ppWin.rate, fmtRate), nil,
			fmt.Sprintf("8f's children with at most %d frames in flight to each, as many as a poold worker gets at most (internal/pool's MaxWindow): through ssh, a window times the round trip bounds the rate", poolWindow)),
		mkRow("8h", "ssh: round trip p50", newFig(median(sshP50), fmtUS), "msgpack ping-pong through ssh p50", newFig(ppRT.p50, fmtUS), nil,
			fmt.Sprintf("the limit of 8b: row 3a's ping-pong (window 1), the child started through the same ssh; its p99 %s µs", f1(ppRT.p99))),
	), nil
}

// sshConnectTime times `ssh -F CONFIG host true`, a connection's cost, a
// few times: in ms.
func sshConnectTime(h *harness, c *sshtest.Cluster) ([]float64, error) {
	var out []float64
	for range h.size(3, 1) {
		ctx, cancel := h.timeout()
		argv := append(c.SSH(), sshHost, "true")
		t0 := time.Now()
		b, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		d := time.Since(t0)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, lastLine(string(b)))
		}
		out = append(out, ms(d))
	}
	return out, nil
}

// closeOnSignal closes c, then exits as the signal would have, when the
// harness gets SIGINT, SIGTERM or SIGHUP before stop is called: the sshd
// servers are in process groups of their own, out of reach of a ^C.
func closeOnSignal(c *sshtest.Cluster) (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "compare: %v: stopping the sshd servers (pids %v)\n", sig, c.PIDs())
			c.Close()
			os.Exit(128 + int(sig.(syscall.Signal)))
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}
