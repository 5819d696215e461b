package main

import (
	"io"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold"
)

// The pool the command runs its tasks on, as the flags configure it.

// newLogger is the pool's logger: its messages of cfg's level and above go
// to w. Below debug, it leaves out the pool's line for each worker that
// failed to start: when they all fail (no such program, no file
// descriptors left), poold says why in one line, and a failure that the
// pool gets over is no news.
func newLogger(cfg *config, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name: "poold", Level: cfg.logLevel, Output: w, JSONFormat: cfg.logJSON,
		Exclude: func(level hclog.Level, msg string, _ ...any) bool {
			return cfg.logLevel > hclog.Debug && msg == startFailedMsg
		},
	})
}

// startFailedMsg is how the pool logs a worker that failed to start.
const startFailedMsg = "worker failed to start"

func poolOptions(cfg *config, logger hclog.Logger) []poold.Option {
	opts := []poold.Option{
		poold.WithWorkers(cfg.workers), poold.WithLogger(logger),
		poold.WithRetryOn(retryKinds(cfg.retryOn)...), poold.WithStartTimeout(cfg.startTimeout),
	}
	if cfg.threads {
		opts = append(opts, poold.WithThreads(newRegistry()))
	}
	if len(cfg.workerCmd) > 0 {
		opts = append(opts, poold.WithWorkerCommand(cfg.workerCmd[0], cfg.workerCmd[1:]...))
	}
	if len(cfg.hosts) > 0 {
		opts = append(opts, sshOption(cfg))
	}
	if cfg.timeout > 0 {
		opts = append(opts, poold.WithTimeout(cfg.timeout))
	}
	if cfg.retries > 0 {
		opts = append(opts, poold.WithRetries(cfg.retries))
	}
	if cfg.maxTasks > 0 {
		opts = append(opts, poold.WithMaxTasksPerWorker(cfg.maxTasks))
	}
	if cfg.maxMemory > 0 {
		opts = append(opts, poold.WithMaxWorkerMemory(cfg.maxMemory))
	}
	return opts
}
