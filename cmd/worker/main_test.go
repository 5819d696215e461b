package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/poold/poold"
)

// TestMain makes this test binary the worker program when a pool starts it
// (the environment says so) or when it runs as "worker".
func TestMain(m *testing.M) {
	if poold.IsWorker() || filepath.Base(os.Args[0]) == "worker" {
		main()
	}
	os.Exit(m.Run())
}

func TestRunByHandExplainsItself(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := &exec.Cmd{Path: exe, Args: []string{"worker"}, Stdout: &stdout, Stderr: &stderr}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "POOLD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("run by hand: %v; want exit status 1", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("wrote to stdout: %q", stdout.String())
	}
	for _, w := range []string{"poold worker", "not meant to be run by hand", "poold --worker-cmd", "poold.WithWorkerCommand", "echo"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("the explanation lacks %q:\n%s", w, stderr.String())
		}
	}
}

func TestServesAPool(t *testing.T) {
	defer goleak.VerifyNone(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := poold.New(ctx, poold.WithWorkers(2), poold.WithWorkerCommand(exe))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Apply(ctx, "echo", map[string]any{"value": "hi"})
	if err != nil {
		t.Fatal(err)
	}
	var v string
	if err := r.Value.Decode(&v); err != nil || v != "hi" {
		t.Errorf("echo returned %q, %v", v, err)
	}
	if r.PID == 0 || r.PID == os.Getpid() {
		t.Errorf("ran in pid %d; this process is %d", r.PID, os.Getpid())
	}
	p.Close()
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
}
