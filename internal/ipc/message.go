package ipc

import "github.com/vmihailenco/msgpack/v5"

// ProtocolVersion is sent in every Hello; a worker of another version is
// refused.
const ProtocolVersion = 4

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
	}
	return "unknown"
}

// Hello is a worker's first frame.
type Hello struct {
	PID     int
	Version int
	Tasks   []string // the task names the worker knows
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
}
