// Package trace writes a pool's [pool.Event]s as a Chrome trace (the
// trace-event JSON format that Perfetto and chrome://tracing open), as the
// pool runs, in bounded memory: nothing is kept per task.
//
// The file is {"displayTimeUnit":"ms","traceEvents":[ then one event a
// line, each but the last followed by a comma (written with the next
// event), then ]} at Close. A run that ends before Close (killed) leaves
// the array unclosed, which both viewers accept. Each
// attempt of a call is one complete event ("ph":"X") on the track of the
// worker that ran it: pid is the host (1 for this machine), tid the worker's
// PID (in threads mode its slot + 1). A worker's start, end and replacement
// are instant events ("ph":"i") on its track; process_name and thread_name
// metadata events name the tracks. Times are microseconds from New.
package trace

import (
	"bufio"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/poold/poold/internal/pool"
)

// FlushEvery is the longest an event waits in the buffer.
const FlushEvery = 100 * time.Millisecond

// flushEvents is the most events that wait in the buffer.
const flushEvents = 512

// Writer writes a trace to an io.Writer. Its methods are safe for
// concurrent use.
type Writer struct {
	threads bool // tid is the slot + 1, not the PID
	origin  int64
	stop    chan struct{}
	done    chan struct{}

	mu      sync.Mutex
	bw      *bufio.Writer
	buf     []byte
	pending int            // events written since the last flush
	hosts   map[string]int // the pid of each host seen; "" is 1
	begun   bool           // an event was written: the next one needs a comma before it
	closed  bool
	err     error // the first write error: events are dropped after it
}

// New starts a trace on w, writing its opening at once. threads says that
// the events come from a Threads pool, whose workers share one PID.
func New(w io.Writer, threads bool) *Writer {
	t := &Writer{
		threads: threads, origin: time.Now().UnixNano(),
		stop: make(chan struct{}), done: make(chan struct{}),
		bw: bufio.NewWriterSize(w, 64<<10), hosts: map[string]int{},
	}
	t.mu.Lock()
	t.bw.WriteString(`{"displayTimeUnit":"ms","traceEvents":[` + "\n")
	t.hostLocked("")
	t.flushLocked()
	t.mu.Unlock()
	go t.flusher()
	return t
}

func (t *Writer) flusher() {
	defer close(t.done)
	tick := time.NewTicker(FlushEvery)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.mu.Lock()
			if t.pending > 0 {
				t.flushLocked()
			}
			t.mu.Unlock()
		}
	}
}

func (t *Writer) flushLocked() {
	t.pending = 0
	if t.err == nil {
		t.err = t.bw.Flush()
	}
}

// Close writes the end of the trace and flushes it. It reports the first
// write error. Idempotent; events after it are dropped.
func (t *Writer) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return t.err
	}
	t.closed = true
	t.bw.WriteString("\n]}\n")
	t.flushLocked()
	err := t.err
	t.mu.Unlock()
	close(t.stop)
	<-t.done
	return err
}

// Event writes e; it is a pool's Config.Events.
func (t *Writer) Event(e pool.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.err != nil {
		return
	}
	pid := t.hostLocked(e.Host)
	tid := t.tid(e.PID, e.Worker)
	b := t.buf[:0]
	switch e.Kind {
	case pool.TaskRun:
		b = append(b, `{"name":`...)
		b = appendName(b, &e)
		b = append(b, `,"cat":"task","ph":"X","ts":`...)
		b = t.appendTime(b, e.Start)
		b = append(b, `,"dur":`...)
		b = appendMicros(b, max(e.End-e.Start, 0))
		b = appendTrack(b, pid, tid)
		b = append(b, `,"args":{"func":`...)
		b = appendString(b, e.Func)
		b = append(b, `,"attempts":`...)
		b = strconv.AppendInt(b, int64(e.Attempts), 10)
		if e.Fail != "" {
			b = append(b, `,"kind":`...)
			b = appendString(b, string(e.Fail))
		}
		if e.CPU >= 0 && !e.Lost {
			b = append(b, `,"cpu_ms":`...)
			b = strconv.AppendFloat(b, float64(e.CPU)/1e6, 'f', -1, 64)
		}
		if e.MaxRSS > 0 {
			b = append(b, `,"max_rss":`...)
			b = strconv.AppendInt(b, e.MaxRSS, 10)
		}
		b = append(b, `,"pid":`...)
		b = strconv.AppendInt(b, int64(e.PID), 10)
		b = append(b, `,"slot":`...)
		b = strconv.AppendInt(b, int64(e.Worker), 10)
		if e.Lost {
			b = append(b, `,"lost":true`...)
		}
		b = append(b, "}},\n"...)
	case pool.WorkerStarted:
		b = append(b, `{"name":"thread_name","ph":"M"`...)
		b = appendTrack(b, pid, tid)
		b = append(b, `,"args":{"name":`...)
		name := "worker " + strconv.Itoa(e.Worker)
		if !t.threads {
			name += " (pid " + strconv.Itoa(e.PID) + ")"
		}
		b = appendString(b, name)
		b = append(b, "}},\n"...)
		b = t.appendInstant(b, "worker started", e.Time, pid, tid, &e)
		b = append(b, "}},\n"...)
		if e.Replaces != 0 {
			b = t.appendInstant(b, "worker replaced", e.Time, pid, tid, &e)
			b = append(b, `,"replaces":`...)
			b = strconv.AppendInt(b, int64(e.Replaces), 10)
			b = append(b, "}},\n"...)
		}
	case pool.WorkerExited:
		name := "worker exited"
		if e.Blame != "" || e.Exit == nil || e.Exit.Signal != 0 || e.Exit.ExitCode != 0 {
			name = "worker died"
		}
		b = t.appendInstant(b, name, e.Time, pid, tid, &e)
		b = append(b, `,"reason":`...)
		b = appendString(b, e.Reason)
		if e.Blame != "" {
			b = append(b, `,"blame":`...)
			b = appendString(b, string(e.Blame))
		}
		if x := e.Exit; x != nil {
			if x.Signal != 0 {
				b = append(b, `,"signal":`...)
				b = strconv.AppendInt(b, int64(x.Signal), 10)
			} else {
				b = append(b, `,"exit_code":`...)
				b = strconv.AppendInt(b, int64(x.ExitCode), 10)
			}
		}
		b = append(b, "}},\n"...)
	default:
		return
	}
	t.buf = b
	t.writeLocked(b)
	if t.pending++; t.pending >= flushEvents {
		t.flushLocked()
	}
}

// appendInstant appends an instant event up to its open args object.
func (t *Writer) appendInstant(b []byte, name string, at int64, pid, tid int64, e *pool.Event) []byte {
	b = append(b, `{"name":`...)
	b = appendString(b, name)
	b = append(b, `,"cat":"worker","ph":"i","s":"t","ts":`...)
	b = t.appendTime(b, at)
	b = appendTrack(b, pid, tid)
	b = append(b, `,"args":{"slot":`...)
	b = strconv.AppendInt(b, int64(e.Worker), 10)
	b = append(b, `,"pid":`...)
	b = strconv.AppendInt(b, int64(e.PID), 10)
	return b
}

// hostLocked is the trace pid of host, naming its track the first time.
func (t *Writer) hostLocked(host string) int64 {
	if id, ok := t.hosts[host]; ok {
		return int64(id)
	}
	id := len(t.hosts) + 1
	t.hosts[host] = id
	name := host
	if name == "" {
		name = "this machine"
	}
	b := append(t.buf[:0], `{"name":"process_name","ph":"M","pid":`...)
	b = strconv.AppendInt(b, int64(id), 10)
	b = append(b, `,"tid":0,"args":{"name":`...)
	b = appendString(b, name)
	b = append(b, "}},\n"...)
	t.buf = b
	t.writeLocked(b)
	return int64(id)
}

// writeLocked writes b, events each ending in ",\n", so that the last
// has no comma after it until another follows: a comma and a newline
// before the events, none after.
func (t *Writer) writeLocked(b []byte) {
	if t.begun {
		t.bw.WriteString(",\n")
	}
	t.begun = true
	t.bw.Write(b[:len(b)-2])
}

// tid is the track of a worker: its PID, or in threads mode its slot + 1,
// kept within 32 bits.
func (t *Writer) tid(pid, slot int) int64 {
	if t.threads {
		return int64(slot+1) & 0x7fffffff
	}
	return int64(pid) & 0x7fffffff
}

func appendTrack(b []byte, pid, tid int64) []byte {
	b = append(b, `,"pid":`...)
	b = strconv.AppendInt(b, pid, 10)
	b = append(b, `,"tid":`...)
	return strconv.AppendInt(b, tid, 10)
}

// appendName appends the event name of a run: the task's name, or its
// function's, and its index for an indexed task.
func appendName(b []byte, e *pool.Event) []byte {
	name := e.Name
	if name == "" {
		name = e.Func
	}
	if e.Index < 0 {
		return appendString(b, name)
	}
	b = appendString(b, name)
	b = b[:len(b)-1] // reopen the string
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(e.Index), 10)
	return append(b, ']', '"')
}

// appendTime appends unix nanoseconds ns as microseconds from the origin.
func (t *Writer) appendTime(b []byte, ns int64) []byte { return appendMicros(b, ns-t.origin) }

// appendMicros appends nanoseconds d as microseconds, to the nanosecond.
func appendMicros(b []byte, d int64) []byte {
	if d < 0 {
		b = append(b, '-')
		d = -d
	}
	b = strconv.AppendInt(b, d/1000, 10)
	if f := d % 1000; f != 0 {
		b = append(b, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
	}
	return b
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
