package poold_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold"
)

// forgetfulEnv makes the test binary a program that builds a pool without
// calling Init; its workers, copies of it, inherit the variable.
const forgetfulEnv = "POOLD_TEST_FORGETFUL"

// forgetfulMain is such a program's main: it prints New's error and how
// many worker starts failed.
func forgetfulMain() int {
	var logs syncBuffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Error})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := poold.New(ctx, poold.WithWorkers(2), poold.WithLogger(logger))
	if err == nil {
		p.Terminate()
		fmt.Println("New succeeded")
		return 0
	}
	fmt.Printf("error: %v\nin worker: %v\nfailed starts: %d\n", err, errors.Is(err, poold.ErrInWorker),
		strings.Count(logs.String(), "worker failed to start"))
	return 1
}

// A program that builds a pool without calling Init gets an error that says
// what to do, at once, and starts no more processes than its workers: each
// worker's New refuses to start a pool of its own, and the parent gives up
// on the first worker that says so. Processes only: threads mode needs no
// Init.
func TestNewWithoutInit(t *testing.T) {
	t.Parallel()
	cmd := exec.CommandContext(testCtx(t), os.Args[0])
	cmd.Env = append(os.Environ(), forgetfulEnv+"=1")
	start := time.Now()
	out, _ := cmd.CombinedOutput()
	el := time.Since(start)
	got := string(out)
	if !strings.Contains(got, "call poold.Init(reg) first thing in main") || !strings.Contains(got, "worker could not start") {
		t.Errorf("the program's output does not say what to do:\n%s", got)
	}
	if strings.Contains(got, "in worker: true") {
		t.Errorf("the parent's New failed as if it were a worker:\n%s", got)
	}
	var failed int
	if _, err := fmt.Sscanf(got[strings.Index(got, "failed starts:"):], "failed starts: %d", &failed); err != nil || failed > 2 {
		t.Errorf("%d failed worker starts (%v), want at most the 2 workers:\n%s", failed, err, got)
	}
	if el > time.Second {
		t.Errorf("the error took %v, want it within 1 s", el)
	}
}

// In a worker process, New fails at once with ErrInWorker and starts
// nothing. Processes only: it guards a worker process against starting
// copies of itself.
func TestNewInAWorkerFails(t *testing.T) {
	t.Setenv("POOLD_WORKER", "2")
	start := time.Now()
	_, err := poold.New(context.Background(), poold.WithWorkers(2))
	if !errors.Is(err, poold.ErrInWorker) || !strings.Contains(err.Error(), "TestMain") {
		t.Fatalf("New in a worker: %v, want ErrInWorker saying what to do", err)
	}
	if el := time.Since(start); el > 100*time.Millisecond {
		t.Errorf("New took %v to refuse", el)
	}
}
