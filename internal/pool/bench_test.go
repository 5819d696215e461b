package pool

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/poold/poold/internal/ipc"
	child "github.com/poold/poold/internal/worker"
)

// BenchmarkSubmitPipelined: b.N single tasks submitted one by one, then
// gathered, on 2 workers: the cost of the whole hot path per task.
func BenchmarkSubmitPipelined(b *testing.B) {
	ctx := context.Background()
	p, err := New(ctx, Config{Workers: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { p.Close(); p.Join(ctx) }()
	args := raw(b, 1)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	wg.Add(b.N)
	done := func(*Task) { wg.Done() }
	for range b.N {
		if err := p.Submit(&Task{Func: "echo", Args: args, Calls: 1, Done: done}); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkRoundTrip: one task at a time, submit to result.
func BenchmarkRoundTrip(b *testing.B) {
	p, err := New(context.Background(), Config{Workers: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Terminate()
	args := raw(b, 1)
	done := make(chan struct{}, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		p.Submit(&Task{Func: "echo", Args: args, Calls: 1, Done: func(*Task) { done <- struct{}{} }})
		<-done
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/rt")
}

// BenchmarkWorkerPingPong talks to one worker directly over ipc, with no
// supervisor: the floor under BenchmarkRoundTrip.
func BenchmarkWorkerPingPong(b *testing.B) {
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), child.Settings{}.Environ()...)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	rd, wr := ipc.NewReader(stdout, 0), ipc.NewWriter(stdin, 0)
	var m ipc.Message
	if err := rd.Read(&m); err != nil {
		b.Fatal(err)
	}
	t := ipc.Task{Func: "echo", Args: []msgpack.RawMessage{raw(b, 1)}}
	b.ResetTimer()
	for i := range b.N {
		t.ID = uint64(i + 1)
		wr.WriteTask(&t)
		wr.Flush()
		if err := rd.Read(&m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/rt")
}

// BenchmarkChunked: b.N tasks in chunks of 10,000 on 2 workers: the cost per
// task inside a chunk.
func BenchmarkChunked(b *testing.B) {
	ctx := context.Background()
	p, err := New(ctx, Config{Workers: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { p.Close(); p.Join(ctx) }()
	one := raw(b, 1)
	var wg sync.WaitGroup
	each := func(*Task, int, *Outcome) {}
	done := func(*Task) { wg.Done() }
	var chunks []*Task
	for left := b.N; left > 0; left -= 10000 {
		n := min(left, 10000)
		chunks = append(chunks, &Task{Func: "echo", Args: bytesRepeat(one, n), Calls: n, Each: each, Done: done})
	}
	wg.Add(len(chunks))
	b.ReportAllocs()
	b.ResetTimer()
	for _, c := range chunks {
		if err := p.Submit(c); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

func bytesRepeat(b []byte, n int) []byte {
	out := make([]byte, 0, len(b)*n)
	for range n {
		out = append(out, b...)
	}
	return out
}

// BenchmarkStart4: New until 4 workers are ready (the harness's 5a), then
// Terminate, which is not timed.
func BenchmarkStart4(b *testing.B) {
	ctx := context.Background()
	for range b.N {
		p, err := New(ctx, Config{Workers: 4})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		p.Terminate()
		b.StartTimer()
	}
}
