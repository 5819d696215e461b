package main

import (
	"bytes"
	"errors"
	"flag"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold"
)

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1000", 1000},
		{"1000B", 1000},
		{"512K", 512 << 10},
		{"512k", 512 << 10},
		{"512KiB", 512 << 10},
		{"512KB", 512_000},
		{"512M", 512 << 20},
		{"1G", 1 << 30},
		{"1.5GiB", 3 << 29},
		{"1.5gb", 1_500_000_000},
		{"2T", 2 << 40},
		{" 64 MiB ", 64 << 20},
	} {
		got, err := parseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "M", "-1G", "1X", "1.2.3M", "lots", "1e3", "9999999999T"} {
		if got, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", bad, got)
		}
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"tasks.json"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.workers != runtime.NumCPU() || cfg.json || cfg.logLevel != hclog.Warn || cfg.taskFile != "tasks.json" ||
		cfg.timeout != 0 || cfg.retries != 0 || cfg.maxTasks != 0 || cfg.maxMemory != 0 || cfg.workerCmd != nil || cfg.hosts != nil ||
		cfg.retryOn != "worker_lost,timeout" || cfg.startTimeout != 10*time.Second {
		t.Errorf("defaults: %+v", cfg)
	}

	cfg, err = parseFlags([]string{"-n", "3", "tasks.json", "--json", "--log-level=DEBUG", "--timeout", "1m",
		"--retries", "2", "--max-tasks-per-worker", "10", "--max-worker-memory", "1G", "--worker-cmd", "srun -N1 '/opt/my poold' worker",
		"--jsonl", "--window", "100"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := config{workers: 3, json: true, logLevel: hclog.Debug, workerCmd: []string{"srun", "-N1", "/opt/my poold", "worker"}, timeout: time.Minute,
		retries: 2, retryOn: "worker_lost,timeout", maxTasks: 10, maxMemory: 1 << 30, jsonl: true, window: 100, taskFile: "tasks.json",
		startTimeout: 10 * time.Second}
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("got %+v\nwant %+v", *cfg, want)
	}

	// "-" is a file name (stdin), and after "--" everything is.
	if cfg, err := parseFlags([]string{"-n", "1", "-"}, nil); err != nil || cfg.taskFile != "-" {
		t.Errorf("stdin: %+v, %v", cfg, err)
	}
	if cfg, err := parseFlags([]string{"-n", "1", "--", "-json"}, nil); err != nil || cfg.taskFile != "-json" || cfg.json {
		t.Errorf("after --: %+v, %v", cfg, err)
	}

	// A name ending in .jsonl streams; --jsonl streams any file.
	for _, tt := range []struct {
		args   []string
		stream bool
	}{
		{[]string{"t.jsonl"}, true},
		{[]string{"t.json"}, false},
		{[]string{"-"}, false},
		{[]string{"--jsonl", "-"}, true},
		{[]string{"--jsonl", "t.json"}, true},
	} {
		cfg, err := parseFlags(tt.args, nil)
		if err != nil || isStream(cfg) != tt.stream {
			t.Errorf("%q: stream %v, %v; want %v", tt.args, isStream(cfg), err, tt.stream)
		}
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "0", "f"}, "-n must be at least 1, not 0"},
		{[]string{"-n", "x", "f"}, `invalid value "x" for flag -n`},
		{[]string{"--timeout", "-2s", "f"}, "--timeout must not be negative, not -2s"},
		{[]string{"--retries", "-1", "f"}, "--retries must not be negative, not -1"},
		{[]string{"--max-tasks-per-worker", "-1", "f"}, "--max-tasks-per-worker must not be negative"},
		{[]string{"--max-worker-memory", "-1", "f"}, `--max-worker-memory: "-1" is not a size`},
		{[]string{"--log-level", "verbose", "f"}, `unknown level "verbose"`},
		{[]string{"--window", "-1", "f"}, "--window must not be negative, not -1"},
		{[]string{"--start-timeout", "0", "f"}, "--start-timeout must be positive, not 0s"},
		{[]string{"--start-timeout", "-1s", "f"}, "--start-timeout must be positive, not -1s"},
		{[]string{"--retry-on", "timout", "f"}, `--retry-on: unknown kind "timout"; the kinds that can be retried: worker_lost, timeout, memory_limit, protocol, exit_status, error, panic, bad_args, encode, result_too_large, canceled`},
		{[]string{"--retry-on", "timeout,,error", "f"}, `--retry-on: an empty kind in "timeout,,error"`},
		{[]string{"--retry-on", "start", "f"}, "--retry-on: kind start cannot be retried"},
		{[]string{"--retry-on", "rate_limited", "f"}, `unknown kind "rate_limited"`}, // allowed only with --worker-cmd
		{[]string{"--what", "f"}, "flag provided but not defined: -what"},
		{nil, "no task file given"},
		{[]string{"a", "b"}, "one task file expected, got 2: a b"},
	} {
		_, err := parseFlags(tt.args, nil)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseFlags(%q) = %v, want a usage error containing %q", tt.args, err, tt.want)
		}
	}
}

func TestParseRetryOn(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--retry-on", "exit_status", "f"}, "exit_status"},
		{[]string{"--retry-on", " exit_status , timeout,exit_status", "f"}, "exit_status,timeout"},
		{[]string{"--retry-on", "", "f"}, ""},
		{[]string{"--retry-on", "rate_limited,timeout", "--worker-cmd", "w", "f"}, "rate_limited,timeout"},
	} {
		cfg, err := parseFlags(tt.args, nil)
		if err != nil || cfg.retryOn != tt.want {
			t.Errorf("%q: %+v, %v; want retryOn %q", tt.args, cfg, err, tt.want)
		}
	}
	if got := retryKinds("exit_status,timeout"); !slices.Equal(got, []poold.Kind{poold.KindExitStatus, poold.KindTimeout}) {
		t.Errorf("retryKinds: %v", got)
	}
	if got := retryKinds(""); len(got) != 0 {
		t.Errorf("retryKinds of none: %v", got)
	}
}

func TestParseFlagsHelpAndVersion(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseFlags([]string{"--help"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
	for _, w := range []string{"usage: poold [flags] TASKFILE", "-max-worker-memory SIZE", "-worker-cmd COMMAND", "-ssh HOSTS", "-ssh-file FILE", "-ssh-command COMMAND", "-remote-poold PATH", "-window N", "-jsonl", "JSON Lines", "Exit status",
		"-retry-on KINDS", `(default "worker_lost,timeout")`, "-start-timeout DURATION", "(default 10s)", "poold help tasks", "README",
		"Tasks: crash, echo, exec, pi, pow, primes, print, sha256, sleep;"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("usage lacks %q:\n%s", w, out.String())
		}
	}
	// --version needs no task file and wins over bad values.
	if cfg, err := parseFlags([]string{"--version", "--log-level", "bogus"}, nil); err != nil || !cfg.version {
		t.Errorf("--version: %+v, %v", cfg, err)
	}
}
