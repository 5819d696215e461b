package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/poold/poold/internal/ipc"
)

// ProbeCPUs starts one worker of h and returns the CPU count its hello
// says, then lets it go: how many workers a host given without a number
// gets. The worker is gone when ProbeCPUs returns. An error says how the
// start failed, with the launcher's stderr.
func ProbeCPUs(ctx context.Context, cfg Config, h Host) (int, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return 0, err
	}
	l := &execLauncher{command: h.Command, env: cfg.Env, host: h.Name, spawner: newSpawner()}
	defer l.Close()
	c, err := l.Launch(settingsFor(cfg))
	if err != nil {
		return 0, err
	}
	type answer struct {
		hello ipc.Hello
		err   error
	}
	got := make(chan answer, 1)
	go func() {
		var m ipc.Message
		err := ipc.NewReader(c.Stdout, cfg.MaxFrame).Read(&m)
		if errors.Is(err, io.EOF) {
			err = errors.New("no hello")
		}
		if err == nil {
			err = checkHello(&m)
		}
		got <- answer{m.Hello, err}
	}()
	stderr := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(c.Stderr, 16<<10))
		stderr <- strings.TrimSpace(string(b))
	}()
	var a answer
	timer := time.NewTimer(cfg.StartTimeout)
	defer timer.Stop()
	select {
	case a = <-got:
	case <-timer.C:
		a.err = fmt.Errorf("no hello within %v", cfg.StartTimeout)
	case <-ctx.Done():
		a.err = ctx.Err()
	}
	c.Stdin.Close()
	c.Proc.Signal(SIGKILL)
	c.Proc.Exited()
	c.Stdout.Close()
	if c.Control != nil {
		c.Control.Close()
	}
	var tail string
	select {
	case tail = <-stderr:
	case <-time.After(cfg.KillGrace):
	}
	c.Stderr.Close()
	exit := c.Proc.Reap()
	if c.Progress != nil {
		c.Progress()
	}
	switch {
	case a.err != nil && tail != "":
		return 0, fmt.Errorf("%w: %s exited with %d%s; stderr: %s", a.err, cmpOr(c.Program, "the worker"), exit.ExitCode, launcherHint(c.Program, exit.ExitCode), lastLine(tail))
	case a.err != nil:
		return 0, fmt.Errorf("%w: %s exited with %d%s", a.err, cmpOr(c.Program, "the worker"), exit.ExitCode, launcherHint(c.Program, exit.ExitCode))
	case a.hello.CPUs < 1:
		return 0, fmt.Errorf("the worker did not say how many CPUs its machine has: give the number of workers, as N/%s", h.Name)
	}
	return a.hello.CPUs, nil
}

func cmpOr(s, or string) string {
	if s == "" {
		return or
	}
	return s
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
