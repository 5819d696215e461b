package ipc

import "github.com/vmihailenco/msgpack/v5"

// ProtocolVersion is sent in every Hello; a worker of another version is
// refused. 5 added the Hello's program, host, CPUs and setup fields and the
// Setup message.
const ProtocolVersion = 5

// Kind is the first element of every frame.
type Kind uint8

// Message kinds.
const (
	KindHello  Kind = 1 // worker → parent, once, first
	KindTask   Kind = 2 // parent → worker
	KindResult Kind = 3 // worker → parent, one per Task, in the order of the tasks
	// 4 and 5 (an old cancel and shutdown, never sent) are retired: a new
	// kind takes a new number.
	KindCancel Kind = 6 // parent → worker, on the control stream only: stop job ID
	KindSetup  Kind = 7 // parent → worker, once, in answer to a Hello that asks for it
)

func (k Kind) String() string {
	switch k {
	case KindHello:
		return "hello"
	case KindTask:
		return "task"
	case KindResult:
		return "result"
	case KindCancel:
		return "cancel"
	case KindSetup:
		return "setup"
	}
	return "unknown"
}

// Hello is a worker's first frame. Its first three fields keep their
// places in every version, so that a parent can name the version of a
// worker it cannot serve; a reader takes the fields after them as optional
// and skips any it does not know.
type Hello struct {
	PID     int
	Version int
	Tasks   []string // the task names the worker knows
	Program string   // the worker program's own version ("poold v1.2.0"); "": not said
	Host    string   // the worker's host name; "": not said
	CPUs    int      // the CPUs the worker's machine has; 0: not said
	// Setup: the worker was started without its settings (an explicit
	// `poold worker`, through ssh or srun, that no environment reaches):
	// the parent answers with a Setup, and the worker, once set up, says
	// Hello again without it.
	Setup bool
}

// Setup is what a parent tells a worker that asked for it in its Hello:
// what an environment-started worker reads from its environment.
type Setup struct {
	MaxFrame        int    // frame-size cap in both directions; 0: the default
	MaxOutput       int    // bytes of a task's printed output kept per task; 0: the default
	LogLevel        string // an hclog level name
	Initializer     string // a task to run once before the second hello; "": none
	InitializerArgs []byte // its arguments, one msgpack value
	Procs           int    // the GOMAXPROCS to set; 0: leave it alone
	MaxMemory       int64  // bytes of resident memory at which the worker ends itself; 0: no limit
	MemoryInterval  int64  // nanoseconds between its memory readings; 0: the default
}

// Task asks a worker to run Func once for each of Args, in order, and to
// answer with Results holding one item per argument between them, in order.
type Task struct {
	ID      uint64
	Func    string
	Timeout int64 // nanoseconds per item, counted from the item's start; 0: none
	Eager   bool  // report each item before the next starts (for calls that must not run twice)
	Args    []msgpack.RawMessage

	// Calls, when set, is the number of arguments in Args on the writer's
	// side, where one element may hold several values back to back (the
	// arguments of a chunk, encoded once). A Reader gives one element per
	// argument and leaves Calls 0.
	Calls int
}

// Result answers the Task with the same ID: its items are those of the
// task's arguments From, From+1, ...; the task is answered once its last
// argument's item has come. A worker sends a Result for the items finished
// so far before it starts the next one when a while has passed since its
// last Result (or always, for an Eager task), so that a worker that dies
// loses little finished work.
type Result struct {
	ID    uint64
	From  int
	Items []Item
}

// Item is the outcome of one argument of a Task.
type Item struct {
	OK     bool
	Value  msgpack.RawMessage // when OK
	Err    *ErrorInfo         // when not OK
	Output []byte             // what the task wrote to stdout
	Start  int64              // unix nanoseconds, in the worker
	End    int64
	// CPU is the CPU time of the call, user and system, in nanoseconds, as
	// the worker measured it (see the worker package); negative: unknown.
	// A Reader gives -1 for an item sent without it.
	CPU int64
	// MaxRSS is the worker's peak resident memory, in bytes, when the call
	// ended, as far as the worker last measured it (see the worker
	// package): the most it held up to then; 0: unknown, and what a Reader
	// gives for an item sent without it.
	MaxRSS int64
}

// ErrorInfo is a task failure as the worker saw it.
type ErrorInfo struct {
	Kind    string
	Message string
	Stack   string             // a panic's stack
	Type    string             // the Go type of the error, or of a panic's value ("*fs.PathError")
	Detail  msgpack.RawMessage // what the error says beyond its message, as one msgpack value; nil: nothing
}

// Cancel asks a worker to stop job ID: if it runs, its context is
// cancelled and its calls not yet started fail without running; if it has
// not been read yet, it fails without running when it is.
type Cancel struct {
	ID uint64
}

// Message is any one decoded frame; only the field named by Kind is set.
type Message struct {
	Kind   Kind
	Hello  Hello
	Task   Task
	Result Result
	Cancel Cancel
	Setup  Setup
}
