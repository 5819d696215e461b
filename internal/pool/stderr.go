package pool

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold/internal/kind"
	child "github.com/poold/poold/internal/worker"
)

// stderrLoop forwards the worker's stderr to the pool's logger: hclog JSON
// lines as structured entries at their level, anything else (a Go crash
// trace, a C library's complaint) as text. It keeps the last lines for crash
// reports. Nothing a worker writes here can crash the parent.
func (w *worker) stderrLoop() {
	defer close(w.logged)
	defer w.stderr.Close()
	br := bufio.NewReaderSize(w.stderr, 16<<10)
	var log hclog.Logger // w.log, taken under Pool.mu until it is final
	final := false
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if err == bufio.ErrBufferFull { // an overlong line: keep its start, drop the rest
				line = append(bytes.Clone(line), "…"...)
				for err == bufio.ErrBufferFull {
					_, err = br.ReadSlice('\n')
				}
			}
			if !final {
				log, final = w.stderrLogger()
			}
			w.logLine(log, bytes.TrimRight(line, "\r\n"))
		}
		if err != nil {
			return
		}
	}
}

// stderrLogger is the logger of w's stderr lines, and whether it is final.
// Until w's hello is taken, adopt may replace w.log, under Pool.mu, beside
// this reader (a launcher such as ssh writes to stderr then); once w is out
// of starting, w.log is read-only.
func (w *worker) stderrLogger() (hclog.Logger, bool) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.log, w.shookHandsLocked()
}

func (w *worker) logLine(log hclog.Logger, line []byte) {
	if len(line) == 0 {
		return
	}
	if line[0] == '{' {
		var entry map[string]any
		if json.Unmarshal(line, &entry) == nil {
			msg, _ := entry["@message"].(string)
			lvl, _ := entry["@level"].(string)
			args := make([]any, 0, 2*len(entry))
			for k, v := range entry {
				if len(k) > 0 && k[0] != '@' {
					args = append(args, k, v)
				}
			}
			level := hclog.LevelFromString(lvl)
			if level == hclog.NoLevel {
				level = hclog.Info
			}
			log.Log(level, msg, args...)
			w.tail.add(msg)
			return
		}
	}
	s := string(bytes.ToValidUTF8(line, []byte("�")))
	w.tail.add(s)
	if strings.HasPrefix(s, child.FatalPrefix) {
		w.p.hopeless(w)
	}
	if what, ok := strings.CutPrefix(s, child.MemoryPrefix); ok {
		w.p.memoryReported(w, what)
	}
	// A Go crash trace is many lines; its headline reaches the task's error,
	// the rest is detail.
	log.Info(s)
}

// hopeless kills w, which said on stderr that it cannot serve, before its
// hello; a worker that did say hello is the pool's to judge by its results.
func (p *Pool) hopeless(w *worker) {
	p.mu.Lock()
	hit := w.state == starting && p.killLocked(w, &blame{kind: kind.Start, hopeless: true, reason: "the worker program said it cannot serve"})
	p.mu.Unlock()
	if hit {
		w.signal(SIGKILL)
	}
}

// stderrTail keeps the last lines a worker wrote to stderr, and the last
// line that says what went wrong (Go's "fatal error:" or "panic:", which a
// long goroutine dump would push out of the tail).
type stderrTail struct {
	mu       sync.Mutex
	buf      [tailLines]string
	n        int
	headline string
	headAt   int // n when the headline was added
}

const tailLines = 20

func (t *stderrTail) add(s string) {
	if len(s) > 512 {
		s = s[:512] + "…"
	}
	t.mu.Lock()
	if isHeadline(s) {
		t.headline, t.headAt = s, t.n
	}
	t.buf[t.n%tailLines] = s
	t.n++
	t.mu.Unlock()
}

func isHeadline(s string) bool {
	return strings.HasPrefix(s, "fatal error:") || strings.HasPrefix(s, "panic:") ||
		strings.HasPrefix(s, "SIG") || strings.HasPrefix(s, "poold worker:")
}

func (t *stderrTail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	first := max(0, t.n-tailLines)
	if t.headline != "" && t.headAt < first {
		out = append(out, t.headline, "…")
	}
	for i := first; i < t.n; i++ {
		out = append(out, t.buf[i%tailLines])
	}
	return out
}
