package main

// Whole processes, timed from exec to exit (workloads 9 and 10): each runs
// in a process group of its own, so that what it starts (poold's workers,
// Python's pool processes) goes with it on a timeout, on an error, on a
// signal to the harness, and after it exits.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// wholeRun is one run of a whole process.
type wholeRun struct {
	wall   time.Duration // from exec to exit
	stderr string
	usage  []byte // what the process wrote on POOLD_USAGE_FD, when asked for
}

// usageFDVar names the descriptor on which the poold command writes its
// usage report when its run is over (cmd/poold/usage.go).
const usageFDVar = "POOLD_USAGE_FD"

// runWhole runs argv with env added to the harness's environment, stdout
// to /dev/null, and waits for it and its process group. With usage, the
// process gets a file as descriptor 3 and POOLD_USAGE_FD=3, and what it
// wrote there comes back in wholeRun.usage.
func (h *harness) runWhole(argv, env []string, usage bool) (wholeRun, error) {
	var r wholeRun
	ctx, cancel := h.timeout()
	defer cancel()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return r, err
	}
	defer devNull.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = devNull, &stderr
	var usageFile *os.File
	if usage {
		if usageFile, err = os.CreateTemp(h.tmp, "usage-"); err != nil {
			return r, err
		}
		defer os.Remove(usageFile.Name())
		defer usageFile.Close()
		cmd.ExtraFiles = []*os.File{usageFile}
		cmd.Env = append(cmd.Env, usageFDVar+"=3")
	}
	r.wall, err = h.runGroup(cmd)
	r.stderr = stderr.String()
	if err != nil {
		return r, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, lastLine(r.stderr))
	}
	if usage {
		if r.usage, err = os.ReadFile(usageFile.Name()); err != nil {
			return r, err
		}
	}
	return r, nil
}

// runGroup starts cmd (made by exec.CommandContext) in a process group of
// its own and waits for it: the time from exec to exit. The whole group
// is killed when cmd's context ends, once cmd has exited (for whatever it
// left behind), and when the harness gets SIGINT, SIGTERM or SIGHUP
// meanwhile (a ^C no longer reaches the group): then the harness removes
// its temporary directory and exits as the signal would have had it.
func (h *harness) runGroup(cmd *exec.Cmd) (time.Duration, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = 10 * time.Second
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "compare: %v: killing process group %d (%s)\n", sig, pid, cmd.Path)
			killGroup(pid)
			os.RemoveAll(h.tmp)
			os.Exit(128 + int(sig.(syscall.Signal)))
		case <-done:
		}
	}()
	err := cmd.Wait()
	wall := time.Since(t0)
	close(done)
	killGroup(pid)
	return wall, err
}

// killGroup kills process group pgid; a group already gone is no error.
func killGroup(pgid int) error {
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// childOutput runs the harness as one of its own children, with env added
// to its environment, in a process group of its own (runGroup): its
// stdout.
func (h *harness) childOutput(env []string) ([]byte, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(h.ctx, 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if _, err := h.runGroup(cmd); err != nil {
		return nil, fmt.Errorf("child %s: %v: %s", strings.Join(env, " "), err, lastLine(stderr.String()))
	}
	return stdout.Bytes(), nil
}
