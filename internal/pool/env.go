package pool

// The environment through which a parent tells a process that it is a
// worker, and how to behave. Nothing else marks worker mode, so that an
// embedding program needs only one entry hook at the top of main.
const (
	EnvWorker    = "POOLD_WORKER" // the protocol version the parent speaks
	EnvMaxFrame  = "POOLD_MAX_FRAME"
	EnvMaxOutput = "POOLD_MAX_OUTPUT"
	EnvLogLevel  = "POOLD_LOG_LEVEL"
	EnvInit      = "POOLD_INIT"       // a task to run once before the handshake
	EnvInitArgs  = "POOLD_INIT_ARGS"  // its arguments, base64 msgpack
	EnvProcs     = "POOLD_GOMAXPROCS" // the worker's GOMAXPROCS, set by Serve (not inherited by what tasks start)

	// EnvCPUProfile, set by the user, makes each worker write its CPU
	// profile into that directory.
	EnvCPUProfile = "POOLD_WORKER_CPUPROFILE"
)
