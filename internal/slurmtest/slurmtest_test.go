package slurmtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// srunArgs are the flags under which srun passes binary bytes through at
// once: one task on one node, stdin to it, and -u so that slurmstepd does
// not hold output back until a newline.
var srunArgs = []string{"-N1", "-n1", "--input=all", "-u"}

// TestPingPong sends length-prefixed binary frames (any byte, newlines
// included, most without a trailing newline) through srun to cat, one at a
// time, each echo read back before the next frame is written.
func TestPingPong(t *testing.T) {
	t0 := time.Now()
	c := Start(t)
	t.Logf("cluster up in %v", time.Since(t0).Round(time.Millisecond))

	cmd := exec.Command(c.Srun(), append(srunArgs, "cat")...)
	cmd.Env = c.Env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	type reply struct {
		frame []byte
		err   error
	}
	replies := make(chan reply)
	go func() {
		defer close(replies)
		for {
			var hdr [4]byte
			if _, err := io.ReadFull(stdout, hdr[:]); err != nil {
				rest, _ := io.ReadAll(stdout)
				replies <- reply{append(hdr[:0:0], rest...), err}
				return
			}
			frame := make([]byte, 4+binary.LittleEndian.Uint32(hdr[:]))
			copy(frame, hdr[:])
			if _, err := io.ReadFull(stdout, frame[4:]); err != nil {
				replies <- reply{nil, err}
				return
			}
			replies <- reply{frame, nil}
		}
	}()

	rng := rand.New(rand.NewPCG(1, 2))
	const n = 200
	var rtts []time.Duration
	for i := range n {
		size := rng.IntN(300)
		switch i % 50 {
		case 0:
			size = 0
		case 7:
			size = 64 << 10
		case 13:
			size = 1 << 20
		}
		frame := make([]byte, 4+size)
		binary.LittleEndian.PutUint32(frame, uint32(size))
		for j := 4; j < len(frame); j++ {
			frame[j] = byte(rng.Uint32())
		}
		if size > 0 && i%3 == 0 {
			frame[len(frame)-1] = '\n'
		}
		start := time.Now()
		if _, err := stdin.Write(frame); err != nil {
			t.Fatalf("frame %d: write: %v; srun's stderr: %s", i, err, stderr.String())
		}
		select {
		case r := <-replies:
			if r.err != nil {
				t.Fatalf("frame %d: read: %v (then %q); srun's stderr: %s", i, r.err, r.frame, stderr.String())
			}
			if !bytes.Equal(r.frame, frame) {
				t.Fatalf("frame %d (%d bytes): echo differs (%d bytes)", i, len(frame), len(r.frame))
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("frame %d (%d bytes, last byte %q): no echo after 20 s; srun's stderr: %s", i, len(frame), frame[len(frame)-1], stderr.String())
		}
		rtts = append(rtts, time.Since(start))
	}
	stdin.Close()
	r := <-replies
	if !errors.Is(r.err, io.EOF) || len(r.frame) != 0 {
		t.Errorf("after the last frame: %v, %q; want EOF and no byte", r.err, r.frame)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("srun: %v; stderr: %s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("srun's stderr: %s", stderr.String())
	}
	slices.Sort(rtts)
	t.Logf("%d round trips: median %v, p90 %v, max %v (the first includes the step's start)",
		n, rtts[n/2], rtts[n*9/10], rtts[n-1])
}

// TestCleanup: when the test that started the cluster ends, its daemons
// have exited and been waited for, and so has a step still running then.
func TestCleanup(t *testing.T) {
	var pids map[string]int
	pidFile := filepath.Join(t.TempDir(), "pid") // outlives the subtest
	var srun *exec.Cmd
	t.Run("cluster", func(t *testing.T) {
		c := Start(t)
		pids = c.pids()
		srun = exec.Command(c.Srun(), "-N1", "-n1", "sh", "-c", `echo $$ > "$0"; exec sleep 300`, pidFile)
		srun.Env = c.Env()
		if err := srun.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			if b, err := os.ReadFile(pidFile); err == nil && bytes.HasSuffix(b, []byte("\n")) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the step did not start in 20 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	if pids == nil {
		return // skipped or failed
	}
	if len(pids) != 3 {
		t.Fatalf("daemons: %v", pids)
	}
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) after cleanup: kill 0: %v; want ESRCH", name, pid, err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- srun.Wait() }()
	select {
	case err := <-done:
		t.Logf("srun of the cancelled step: %v", err)
	case <-time.After(10 * time.Second):
		srun.Process.Kill()
		t.Error("srun still running 10 s after the cluster stopped")
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	task, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(task, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the step's task (pid %d) outlived the cluster", task)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSrunSignalled: when srun is killed (SIGKILL) or terminated (SIGTERM),
// its task ends too, even one still reading its stdin, and srun exits.
func TestSrunSignalled(t *testing.T) {
	c := Start(t)
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			cmd := exec.Command(c.Srun(), append(srunArgs, "sh", "-c", `echo $$ > "$0"; exec cat`, pidFile)...)
			cmd.Env = c.Env()
			stdin, err := cmd.StdinPipe() // held open: cat does not end by itself
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var task int
			deadline := time.Now().Add(20 * time.Second)
			for task == 0 {
				if b, err := os.ReadFile(pidFile); err == nil && bytes.HasSuffix(b, []byte("\n")) {
					task, _ = strconv.Atoi(strings.TrimSpace(string(b)))
				} else if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatal("the step did not start in 20 s")
				} else {
					time.Sleep(50 * time.Millisecond)
				}
			}
			start := time.Now()
			cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				t.Logf("srun after %v: %v", sig, err)
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("srun still running 10 s after %v", sig)
			}
			for syscall.Kill(task, 0) == nil {
				if time.Since(start) > 10*time.Second {
					t.Fatalf("task (pid %d) still running 10 s after srun got %v", task, sig)
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("task gone %v after srun got %v", time.Since(start).Round(time.Millisecond), sig)
		})
	}
}
