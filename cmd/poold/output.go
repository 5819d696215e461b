package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/sys/unix"

	"github.com/poold/poold"
)

// outcome is one task's result as the command reports it.
type outcome struct {
	ID    string
	Index int // position in the overall output order
	Res   poold.Result[poold.Raw]
}

type header struct {
	Tasks              int    // -1 for a stream, whose length is unknown
	Stream             string // a stream's name
	Workers, CPUs, PID int
	Hosts              string // where the workers run, with --ssh ("2 on hostA, 2 on hostB"); "": here
}

type summary struct {
	Tasks, OK, Failed int
	Skipped           int // tasks skipped by --resume or --resume-failed
	PIDs              int // distinct worker pids that ran tasks
	WorkersStarted    int
	Wall              time.Duration
	Signal            syscall.Signal // the signal that interrupted the run; 0 if none did
	Stats             *runStats      // what explains the run; nil: nothing ran
}

// reporter prints a run: a header, each result as it finishes, a summary.
type reporter interface {
	Header(header)
	Result(outcome)
	Summary(summary)
}

// Widths of the shortened parts of a text line: enough to recognise a value
// or an error, short enough to keep one task on one line.
const (
	resultWidth = 60
	errorWidth  = 100
)

// textReporter prints for people, everything on one writer.
type textReporter struct {
	w                  io.Writer
	idWidth, funcWidth int
	attempts           bool // an ATT column: tasks may be retried
	width              int  // the terminal's columns, to fit lines in; 0: none
	hosts              int  // the width of a HOST column, when workers run on several hosts; 0: none
}

// Column widths for a stream, whose ids and names are not known in advance:
// room for the default ids of a million entries and the built-ins' names.
// Longer ones shift the columns after them.
const (
	streamIDWidth   = 7
	streamFuncWidth = 6
)

// newTextReporter sizes the columns for the entries of tf; nil for a
// stream.
func newTextReporter(w io.Writer, tf *TaskFile) *textReporter {
	if tf == nil {
		return &textReporter{w: w, idWidth: streamIDWidth, funcWidth: streamFuncWidth}
	}
	return &textReporter{w: w, idWidth: max(len("ID"), tf.IDWidth), funcWidth: max(len("FUNC"), tf.FuncWidth)}
}

func (r *textReporter) Header(h header) {
	writeHeader(r.w, h)
	fmt.Fprintf(r.w, "%s%s\n", r.columns("HOST", "PID", "ID", "FUNC", "STATUS", "ATT", "TIME"), "RESULT")
}

// columns lays out the columns before RESULT.
func (r *textReporter) columns(host, pid, id, fn, status, att, took string) string {
	line := ""
	if r.hosts > 0 {
		line = fmt.Sprintf("%-*s  ", r.hosts, host)
	}
	line += fmt.Sprintf("%7s  %-*s  %-*s  %-11s  ", pid, r.idWidth, id, r.funcWidth, fn, status)
	if r.attempts {
		line += fmt.Sprintf("%3s  ", att)
	}
	return line + fmt.Sprintf("%8s  ", took)
}

func (r *textReporter) Result(o outcome) {
	res := o.Res
	pid := "-"
	if res.PID != 0 {
		pid = fmt.Sprint(res.PID)
	}
	host := hostName(res.Host)
	prefix := r.columns(host, pid, o.ID, res.Func, "ok", fmt.Sprint(res.Attempts), formatDuration(duration(res)))
	status, detail, width := "ok", string(resultJSON(res.Value)), resultWidth
	if res.Err != nil {
		status, detail, width = string(errorKind(res.Err)), errorMessage(res.Err), errorWidth
		prefix = r.columns(host, pid, o.ID, res.Func, status, fmt.Sprint(res.Attempts), formatDuration(duration(res)))
	}
	if r.width > 0 {
		// On a terminal the line fits: the result is cut, not the columns
		// before it.
		width = max(min(width, r.width-utf8.RuneCountInString(prefix)), 10)
	}
	fmt.Fprintf(r.w, "%s%s\n", prefix, shorten(detail, width))
}

// quietReporter passes on only the failures, and the header and summary.
type quietReporter struct{ reporter }

func (q quietReporter) Result(o outcome) {
	if o.Res.Err != nil {
		q.reporter.Result(o)
	}
}

func (r *textReporter) Summary(s summary) {
	writeSummary(r.w, s)
	writeExplain(r.w, s.Stats, s.Wall)
}

// jsonReporter prints JSON Lines on out and nothing else there, so that out
// can be piped into jq; the header and the summary go to log.
type jsonReporter struct {
	w    io.Writer
	out  *json.Encoder // for the lines appendRecord leaves to it
	log  io.Writer
	buf  []byte
	conv mpJSON
}

func newJSONReporter(out, log io.Writer) *jsonReporter {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	return &jsonReporter{w: out, out: enc, log: log}
}

func (r *jsonReporter) Header(h header) { writeHeader(r.log, h) }

// Summary writes the summary for people, then the same as one JSON line,
// {"summary": {...}}, the last line on stderr.
func (r *jsonReporter) Summary(s summary) {
	writeSummary(r.log, s)
	writeExplain(r.log, s.Stats, s.Wall)
	b := marshal(map[string]jsonSummary{"summary": newJSONSummary(s)})
	fmt.Fprintf(r.log, "%s\n", b)
}

// jsonRecord is one line of --json output.
type jsonRecord struct {
	ID         string          `json:"id"`
	Index      int             `json:"index"`
	Func       string          `json:"func"`
	OK         bool            `json:"ok"`
	Result     json.RawMessage `json:"result,omitempty"` // "null" when the result is null
	Error      *jsonError      `json:"error,omitempty"`
	Host       string          `json:"host"` // ":" for this machine
	PID        int             `json:"pid"`
	Attempts   int             `json:"attempts"`
	Start      string          `json:"start,omitempty"` // absent when the task never started
	End        string          `json:"end,omitempty"`
	DurationMS float64         `json:"duration_ms"`
	CPUMS      *float64        `json:"cpu_ms"`        // null when unknown
	MaxRSS     *int64          `json:"max_rss_bytes"` // null when unknown
	Output     string          `json:"output,omitempty"`
}

// jsonError is a failure. The worker-exit fields appear when the worker
// running the task died or was killed; for kind exit_status (a command
// that failed), exit_code or signal, stdout and stderr say how the command
// ended and what it wrote.
type jsonError struct {
	Kind     string  `json:"kind"`
	Message  string  `json:"message"`
	PID      int     `json:"pid,omitempty"`
	ExitCode *int    `json:"exit_code,omitempty"`
	Signal   string  `json:"signal,omitempty"`
	CoreDump bool    `json:"core_dump,omitempty"`
	Reason   string  `json:"reason,omitempty"`
	Stdout   *string `json:"stdout,omitempty"` // exit_status: the command's
	// Stderr is the worker's last lines ([]string) when it ended under the
	// task, the command's stderr (a string) for exit_status.
	Stderr any             `json:"stderr,omitempty"`
	Stack  string          `json:"stack,omitempty"`
	Type   string          `json:"type,omitempty"`   // the Go type of the task's error or panic value
	Detail json.RawMessage `json:"detail,omitempty"` // what else the task's error said, as JSON
}

// exitDetail is the detail of an exit_status failure, as the built-in
// exec sends it.
type exitDetail struct {
	ExitCode *int    `msgpack:"exit_code"`
	Signal   string  `msgpack:"signal"`
	Stdout   *string `msgpack:"stdout"`
	Stderr   *string `msgpack:"stderr"`
}

func (r *jsonReporter) Result(o outcome) {
	// An error here means stdout is gone; nothing useful is left to do
	// with it.
	if b, ok := appendRecord(r.buf[:0], o, &r.conv); ok {
		r.buf = b
		_, _ = r.w.Write(b)
		return
	}
	_ = r.out.Encode(newJSONRecord(o))
}

func newJSONRecord(o outcome) jsonRecord {
	res := o.Res
	rec := jsonRecord{
		ID: o.ID, Index: o.Index, Func: res.Func, OK: res.Err == nil,
		Host: hostName(res.Host), PID: res.PID, Attempts: res.Attempts,
		DurationMS: float64(duration(res)) / float64(time.Millisecond),
		Output:     string(res.Output),
	}
	if res.MaxRSS > 0 {
		rec.MaxRSS = &res.MaxRSS
	}
	if res.CPU >= 0 {
		ms := float64(res.CPU) / float64(time.Millisecond)
		rec.CPUMS = &ms
	}
	if !res.Start.IsZero() {
		rec.Start = res.Start.Format(time.RFC3339Nano)
	}
	if !res.End.IsZero() {
		rec.End = res.End.Format(time.RFC3339Nano)
	}
	if res.Err == nil {
		rec.Result = resultJSON(res.Value)
	} else {
		rec.Error = newJSONError(res.Err)
	}
	return rec
}

func newJSONError(err error) *jsonError {
	je := &jsonError{Kind: string(errorKind(err)), Message: errorMessage(err)}
	var te *poold.TaskError
	if errors.As(err, &te) {
		je.Stack, je.Type = te.Stack, te.Type
		if len(te.Detail) > 0 && !(te.Kind == poold.KindExitStatus && je.exitStatus(te.Detail)) {
			je.Detail = resultJSON(te.Detail)
		}
	}
	var we *poold.WorkerExitError
	if errors.As(err, &we) {
		je.PID, je.CoreDump, je.Reason = we.PID, we.CoreDump, we.Reason
		if len(we.Stderr) > 0 {
			je.Stderr = we.Stderr
		}
		if we.Signal != 0 {
			je.Signal = signalName(we.Signal)
		} else {
			je.ExitCode = &we.ExitCode
		}
	}
	return je
}

// exitStatus fills the fields of an exit_status failure from its detail;
// false if the detail does not have their shape (a worker program's own
// exit_status, say), which is then shown as it is.
func (je *jsonError) exitStatus(detail poold.Raw) bool {
	var d exitDetail
	if detail.Decode(&d) != nil || d.Stdout == nil || d.Stderr == nil || (d.ExitCode == nil && d.Signal == "") {
		return false
	}
	if d.Signal != "" {
		je.Signal = d.Signal
	} else {
		je.ExitCode = d.ExitCode
	}
	je.Stdout, je.Stderr = d.Stdout, *d.Stderr
	return true
}

func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return sig.String()
}

// errorKind is the failure kind of a task error; "error" for an error that
// is not a *TaskError (which the pool should never produce).
func errorKind(err error) poold.Kind {
	var te *poold.TaskError
	if errors.As(err, &te) {
		return te.Kind
	}
	return poold.KindError
}

// errorMessage is the task error's own message, without the "task f: kind
// (pid n)" prefix that the other fields already say.
func errorMessage(err error) string {
	var te *poold.TaskError
	if errors.As(err, &te) && te.Message != "" {
		return te.Message
	}
	return err.Error()
}

// resultJSON renders a msgpack result as JSON. It never fails: a value JSON
// cannot hold (NaN, say) is shown as a string instead.
func resultJSON(raw poold.Raw) json.RawMessage {
	var c mpJSON
	return c.appendResult(nil, raw)
}

// slowResultJSON is resultJSON through Go values: for what mpJSON does not
// take on.
func slowResultJSON(raw poold.Raw) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	v, err := decodeAny(raw)
	if err != nil {
		return marshal(fmt.Sprintf("<undecodable result: %v>", err))
	}
	b, err := marshalErr(jsonable(v))
	if err != nil {
		return marshal(fmt.Sprint(v))
	}
	return b
}

// decodeAny decodes a msgpack value into Go's generic types.
func decodeAny(raw poold.Raw) (any, error) {
	var v any
	err := raw.Decode(&v)
	if err == nil {
		return v, nil
	}
	// Raw.Decode decodes every map as map[string]any and fails on other
	// keys, which msgpack allows (a Go map[int]string, say): go again with
	// maps of any keys.
	if v, ok := decodeUntyped(raw); ok {
		return v, nil
	}
	return nil, err
}

// decodeUntyped decodes raw with maps of any keys. A key that Go cannot
// hash (a map: msgpack allows it) makes the decoder panic; that is a
// result it cannot decode, not a reason for poold to die.
func decodeUntyped(raw poold.Raw) (v any, ok bool) {
	defer func() {
		if recover() != nil {
			v, ok = nil, false
		}
	}()
	dec := msgpack.NewDecoder(bytes.NewReader(raw))
	dec.SetMapDecoder(func(d *msgpack.Decoder) (any, error) { return d.DecodeUntypedMap() })
	v, err := dec.DecodeInterface()
	return v, err == nil
}

// jsonable makes a decoded msgpack value encodable as JSON: msgpack maps
// may have keys of any type, JSON objects only strings.
func jsonable(v any) any {
	switch v := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[fmt.Sprint(k)] = jsonable(x)
		}
		return m
	case map[string]any:
		for k, x := range v {
			v[k] = jsonable(x)
		}
		return v
	case []any:
		for i := range v {
			v[i] = jsonable(v[i])
		}
		return v
	default:
		return v
	}
}

func marshal(v any) json.RawMessage {
	b, _ := marshalErr(v)
	return b
}

// marshalErr is json.Marshal without HTML escaping: the output is for
// terminals and jq, not for web pages.
func marshalErr(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// shorten puts s on one line and cuts it to at most n characters.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return string(runes[:n-1]) + "…"
}

func duration(r poold.Result[poold.Raw]) time.Duration {
	if r.Start.IsZero() || r.End.IsZero() {
		return 0
	}
	return r.Duration()
}

// formatDuration rounds d to what a person compares: 2.001s, 12ms, 153µs.
func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}

func writeHeader(w io.Writer, h header) {
	tasks := plural(h.Tasks, "task")
	if h.Tasks < 0 {
		tasks = "streaming tasks from " + h.Stream
	}
	if h.Hosts != "" {
		fmt.Fprintf(w, "poold: %s on %s (%s), parent pid %d\n", tasks, plural(h.Workers, "worker"), h.Hosts, h.PID)
		return
	}
	fmt.Fprintf(w, "poold: %s on %s (%s), parent pid %d\n",
		tasks, plural(h.Workers, "worker"), plural(h.CPUs, "CPU"), h.PID)
}

func writeSummary(w io.Writer, s summary) {
	if s.Signal != 0 {
		fmt.Fprintf(w, "interrupted by %s: unfinished tasks were terminated\n", signalName(s.Signal))
	}
	skipped := ""
	if s.Skipped > 0 {
		skipped = fmt.Sprintf(", %d skipped (in the job log)", s.Skipped)
	}
	fmt.Fprintf(w, "%s: %d ok, %d failed%s; %s used, %s started; wall time %s\n",
		plural(s.Tasks, "task"), s.OK, s.Failed, skipped, plural(s.PIDs, "worker pid"), plural(s.WorkersStarted, "worker"),
		s.Wall.Round(time.Millisecond))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
