package pool

import (
	"context"
	"github.com/poold/poold/internal/ipc"
	child "github.com/poold/poold/internal/worker" // the worker side; "worker" here is the parent's view of one
	"github.com/vmihailenco/msgpack/v5"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
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
		if err := p.Submit("echo", []*Task{{Args: args, Done: done}}, 1); err != nil {
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
		p.Submit("echo", []*Task{{Args: args, Done: func(*Task) { done <- struct{}{} }}}, 1)
		<-done
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/rt")
}

var _ = time.Second

// BenchmarkWorkerPingPong talks to one worker directly over ipc, with no
// supervisor: the floor under BenchmarkRoundTrip.
func BenchmarkWorkerPingPong(b *testing.B) {
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), child.EnvWorker+"=1")
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
	args := raw(b, 1)
	var wg sync.WaitGroup
	wg.Add(b.N)
	done := func(*Task) { wg.Done() }
	ts := make([]*Task, b.N)
	for i := range ts {
		ts[i] = &Task{Args: args, Done: done}
	}
	b.ReportAllocs()
	b.ResetTimer()
	if err := p.Submit("echo", ts, 10000); err != nil {
		b.Fatal(err)
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}
