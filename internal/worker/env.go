package worker

import (
	"encoding/base64"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"github.com/poold/poold/internal/ipc"
)

// The environment through which a parent tells a process that it is a
// worker, and how to behave. Nothing else marks worker mode, so that an
// embedding program needs only one entry hook at the top of main. Both
// directions, [Settings.Environ] and readSettings, live in this file.
const (
	EnvWorker    = "POOLD_WORKER" // the protocol version the parent speaks
	EnvMaxFrame  = "POOLD_MAX_FRAME"
	EnvMaxOutput = "POOLD_MAX_OUTPUT"
	EnvLogLevel  = "POOLD_LOG_LEVEL"
	EnvInit      = "POOLD_INIT"        // a task to run once before the handshake
	EnvInitArgs  = "POOLD_INIT_ARGS"   // its arguments, base64 msgpack
	EnvProcs     = "POOLD_GOMAXPROCS"  // the worker's GOMAXPROCS, set by Serve (not inherited by what tasks start)
	EnvControl   = "POOLD_CONTROL_FD"  // the descriptor of the parent's control stream (cancellations), if it gave one
	EnvProgress  = "POOLD_PROGRESS_FD" // the descriptor of the memory where the worker records its progress, if given

	// EnvCPUProfile, set by the user, makes each worker write its CPU
	// profile into that directory.
	EnvCPUProfile = "POOLD_WORKER_CPUPROFILE"
)

// defaultMaxOutput is how much of a task's printed output is kept when the
// parent does not say.
const defaultMaxOutput = 4 << 20

// Settings are what a parent tells a worker through its environment.
type Settings struct {
	MaxFrame        int    // frame-size cap in both directions; 0: ipc.DefaultMaxFrame
	MaxOutput       int    // bytes of a task's printed output kept per task; 0: 4 MiB
	LogLevel        string // an hclog level name
	Initializer     string // a task to run once before the handshake; "": none
	InitializerArgs []byte // its arguments, one msgpack value
	Procs           int    // the GOMAXPROCS to set; 0: leave it alone
	ControlFD       int    // the descriptor of the control stream the launcher gave; 0: none
	ProgressFD      int    // the descriptor of the progress memory the launcher gave; 0: none
}

// FatalPrefix starts a line that a worker process writes to stderr when it
// cannot serve at all: its parent then stops it and starts no other copy.
const FatalPrefix = "poold worker: fatal: "

// IsWorker reports whether this process was started by a pool as a worker.
func IsWorker() bool { return os.Getenv(EnvWorker) != "" }

// Environ returns the "KEY=value" entries a parent adds to a worker's
// environment: the worker marker with this build's protocol version, then
// the settings.
func (s Settings) Environ() []string {
	env := []string{
		EnvWorker + "=" + strconv.Itoa(ipc.ProtocolVersion),
		EnvMaxFrame + "=" + strconv.Itoa(s.MaxFrame),
		EnvMaxOutput + "=" + strconv.Itoa(s.MaxOutput),
		EnvLogLevel + "=" + s.LogLevel,
	}
	if s.Initializer != "" {
		env = append(env, EnvInit+"="+s.Initializer,
			EnvInitArgs+"="+base64.StdEncoding.EncodeToString(s.InitializerArgs))
	}
	if s.Procs > 0 {
		env = append(env, EnvProcs+"="+strconv.Itoa(s.Procs))
	}
	if s.ControlFD > 0 {
		env = append(env, EnvControl+"="+strconv.Itoa(s.ControlFD))
	}
	if s.ProgressFD > 0 {
		env = append(env, EnvProgress+"="+strconv.Itoa(s.ProgressFD))
	}
	return env
}

// versionError: the parent speaks another protocol version, or none.
type versionError struct{ parent string }

func (e *versionError) Error() string {
	return fmt.Sprintf("parent speaks protocol %q, this worker %d", e.parent, ipc.ProtocolVersion)
}

// readSettings parses what [Settings.Environ] wrote, looking names up with
// getenv. A *versionError means the parent is not one this
// build can serve; any other error is about the initializer's arguments,
// and is reported as the initializer's failure. A number that is absent or
// not positive reads as 0: its default.
func readSettings(getenv func(string) string) (Settings, error) {
	if v := getenv(EnvWorker); v != strconv.Itoa(ipc.ProtocolVersion) {
		return Settings{}, &versionError{parent: v}
	}
	s := Settings{
		MaxFrame:    positive(getenv(EnvMaxFrame)),
		MaxOutput:   positive(getenv(EnvMaxOutput)),
		LogLevel:    getenv(EnvLogLevel),
		Initializer: getenv(EnvInit),
		Procs:       positive(getenv(EnvProcs)),
		ControlFD:   positive(getenv(EnvControl)),
		ProgressFD:  positive(getenv(EnvProgress)),
	}
	if s.Initializer == "" {
		return s, nil
	}
	args, err := base64.StdEncoding.DecodeString(getenv(EnvInitArgs))
	if err != nil {
		return s, fmt.Errorf("arguments: %w", err)
	}
	s.InitializerArgs = args
	return s, nil
}

func positive(v string) int {
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return n
	}
	return 0
}

// applyToProcess does what s says of the process itself: its GOMAXPROCS.
func (s Settings) applyToProcess() {
	if s.Procs > 0 {
		runtime.GOMAXPROCS(s.Procs)
	}
}

// clearEnv removes every variable of the contract from the environment:
// what a task starts must not believe it is a worker too.
func clearEnv() {
	for _, k := range [...]string{EnvWorker, EnvMaxFrame, EnvMaxOutput, EnvLogLevel, EnvInit, EnvInitArgs, EnvCPUProfile, EnvProcs, EnvControl, EnvProgress} {
		os.Unsetenv(k)
	}
}
