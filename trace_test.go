package poold_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/poold/poold"
)

// lockedBuffer is a bytes.Buffer the trace may write while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWithTrace: runs named by TraceName or their function, a Map's with
// their index, a retried task once per attempt, and the trace closed once
// Join returns.
func TestWithTrace(t *testing.T) {
	for _, mode := range []string{"processes", "threads"} {
		t.Run(mode, func(t *testing.T) {
			var buf lockedBuffer
			opts := []poold.Option{poold.WithWorkers(2), poold.WithTrace(&buf)}
			if mode == "threads" {
				opts = append(opts, poold.WithThreads(reg))
			}
			ctx := context.Background()
			p, err := poold.New(ctx, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Terminate()
			if _, err := square.Map(ctx, p, []int{1, 2, 3}, poold.TraceName("sq"), poold.ChunkSize(2)); err != nil {
				t.Fatal(err)
			}
			if _, err := square.Apply(ctx, p, 4); err != nil {
				t.Fatal(err)
			}
			want := []string{"sq[0]", "sq[1]", "sq[2]", "square"}
			if mode == "processes" {
				// Lost with its worker and retried: two runs.
				r, _ := exitWith.Apply(ctx, p, 3, poold.Retries(1), poold.TraceName("exit3"))
				if r.Attempts != 2 {
					t.Fatalf("exit task: %d attempts, want 2", r.Attempts)
				}
				want = append(want, "exit3", "exit3")
			}
			p.Close()
			if err := p.Join(ctx); err != nil {
				t.Fatal(err)
			}
			s := buf.String()
			if !strings.HasSuffix(s, "]}\n") {
				t.Fatalf("trace not closed after Join:\n%s", s)
			}
			var doc struct {
				TraceEvents []struct {
					Name string         `json:"name"`
					Ph   string         `json:"ph"`
					TID  int64          `json:"tid"`
					Args map[string]any `json:"args"`
				} `json:"traceEvents"`
			}
			if err := json.Unmarshal([]byte(s), &doc); err != nil {
				t.Fatalf("%v:\n%s", err, s)
			}
			var got []string
			deaths := 0
			for _, e := range doc.TraceEvents {
				switch {
				case e.Ph == "X":
					got = append(got, e.Name)
					if slot := int64(e.Args["slot"].(float64)); mode == "threads" && e.TID != slot+1 {
						t.Errorf("threads: run %s on tid %d, slot %d", e.Name, e.TID, slot)
					}
				case e.Name == "worker died":
					deaths++
				}
			}
			sort.Strings(got)
			sort.Strings(want)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("runs %v, want %v", got, want)
			}
			if mode == "processes" && deaths != 2 {
				t.Errorf("%d worker deaths, want 2", deaths)
			}
		})
	}
}

func TestWithTraceNil(t *testing.T) {
	if _, err := poold.New(context.Background(), poold.WithTrace(nil)); err == nil {
		t.Fatal("WithTrace(nil) accepted")
	}
}
