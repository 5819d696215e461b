// Package ipc is the only code that touches bytes on a worker pipe.
//
// A frame is a 4-byte big-endian length followed by that many bytes of
// msgpack. Every frame body is one msgpack array whose first element is the
// message [Kind]:
//
//	Hello    [1, pid, version, [task names...], program, host, cpus, setup]
//	Task     [2, id, func, timeout_ns, eager, [args...]]  one or more raw args: more than one is a chunk
//	Result   [3, id, from, [[ok, value, err, output, start_ns, end_ns, cpu_ns, max_rss]...]]  items of args from, from+1, ...
//	Cancel   [6, id]                                    on the control stream only: stop job id
//	Setup    [7, max_frame, max_output, log_level, initializer, init_args, procs, max_memory, memory_interval_ns]
//
// A Hello's first three fields keep their places in every version, and the
// rest are optional (a reader skips those after the ones it knows), so that
// a parent can name the version of a worker it cannot serve. Protocol 5
// added program (the worker's version, a str), host (its host name), cpus
// and setup (a bool: the worker was started by a command line, `poold
// worker`, and no environment told it its settings). The parent answers
// such a hello with a Setup (init_args one raw value or nil; zeros mean the
// defaults), and the worker, set up and its initializer run, says Hello
// again without setup.
//
// where err is nil or [kind, message, stack, type, detail], detail being
// one raw value (nil: none), and cpu_ns is the CPU time of the call in its
// worker, user and system (negative: unknown), max_rss the worker's peak
// resident memory in bytes when the call ended (0: unknown). Protocol 4
// added cpu_ns, then max_rss (optional, so the version stayed); a worker
// always sends both, and an item that ends at end_ns (or cpu_ns) is read as
// one whose CPU (peak memory) is unknown. A job's items may come in several Results, in
// order, each starting where the last ended (a worker reports a long
// chunk's finished calls as it goes; each of them, for an eager task).
// Kinds 4 and 5 are retired. Arguments and values are raw msgpack: this
// package never decodes them, it only checks that they are well formed. An
// empty value is sent as nil, and read back as the one byte of msgpack nil.
//
// Types are checked: kind, id, from, pid, version, timeout, start, end and
// cpu are integers (any msgpack width; ids and kinds not negative, none
// beyond the Go field), func, names and the parts of err are str, ok is a
// bool, output is bin or nil, eager a bool. A frame of the wrong shape or of
// any other kind is [ErrMalformed]; so is a Task without arguments, which
// Writer also refuses to write.
//
// Frames come from processes we do not trust (a task can crash its worker
// half way through a write, or write garbage). The length is checked against a
// cap before anything is allocated, and the body buffer grows only as bytes
// arrive, so a header that claims a large frame costs nothing until the frame
// comes. The decoder checks every length against the bytes left before it
// takes them or allocates for them, and walks each raw value (an argument, a
// result, an error's detail: the only nesting a frame holds) with
// [ValueLen], which bounds its lengths and its depth (counted from the
// frame's message array, as [Validate] counts a whole frame), so that no
// length claimed inside a frame can make it allocate more than a small
// multiple of the frame (msgpack
// v5.4.1 has no decode limits of its own; the Reader does not use its
// decoder). FuzzReader checks both.
package ipc
