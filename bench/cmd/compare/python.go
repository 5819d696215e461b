package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/poold/poold/bench"
)

// python runs the Python side of the comparison: bench/py/pool_bench.py
// (embedded in the harness) with the real interpreter.
type python struct {
	exe     string
	script  string // the embedded script, written to a temporary file
	version string
}

// findPython resolves the interpreter: flag as given, or, when flag is "",
// the real executable behind python3 on PATH (on this machine a pyenv shim
// that costs ~300 ms a start). It returns nil and why when there is none.
func findPython(ctx context.Context, flag, tmpDir string) (*python, string) {
	exe := flag
	switch flag {
	case "none", "off":
		return nil, "disabled by -python " + flag
	case "":
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(c, "python3", "-c", "import sys; print(sys.executable)").Output()
		if err != nil {
			return nil, "python3 not usable: " + err.Error()
		}
		exe = strings.TrimSpace(string(out))
		if exe == "" {
			return nil, "python3 reports no sys.executable"
		}
	}
	script := filepath.Join(tmpDir, "pool_bench.py")
	if err := os.WriteFile(script, bench.PoolBenchPy, 0o644); err != nil {
		return nil, err.Error()
	}
	py := &python{exe: exe, script: script}
	var info struct {
		Version string `json:"version"`
		Exe     string `json:"executable"`
	}
	if err := py.run(ctx, &info, "info"); err != nil {
		return nil, err.Error()
	}
	py.version = info.Version
	return py, ""
}

// run runs one sub-command of the script and decodes the JSON object it
// prints into out.
func (py *python) run(ctx context.Context, out any, args ...string) error {
	c, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(c, py.exe, append([]string{py.script}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("python %s: %v: %s", strings.Join(args, " "), err, lastLine(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		return fmt.Errorf("python %s: bad output %q: %v", strings.Join(args, " "), stdout.String(), err)
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// pyRun runs a Python workload for the harness: nil error and ok=false
// when Python is not available, an error when the script failed.
func (h *harness) pyRun(out any, args ...string) (ok bool, err error) {
	if h.py == nil {
		return false, nil
	}
	if err := h.py.run(h.ctx, out, args...); err != nil {
		return false, err
	}
	return true, nil
}
