package poold_test

import (
	"context"
	"testing"
	"time"

	"github.com/poold/poold"
)

// TestMapValues: the values in input order, who ran each, and the first
// failure as the error, with the other values still there; in both modes.
func TestMapValues(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		p := m.pool(t, poold.WithWorkers(2))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, n := range []int{0, 1, 7, 1000} {
			args := make([]int, n)
			for i := range args {
				args[i] = i
			}
			v, err := square.MapValues(ctx, p, args)
			if err != nil {
				t.Fatalf("%d items: %v", n, err)
			}
			if len(v.Values) != n || len(v.Failed()) != 0 {
				t.Fatalf("%d items: %d values, failed %v", n, len(v.Values), v.Failed())
			}
			for i, x := range v.Values {
				if x != i*i || v.Ran(i).PID == 0 || v.Err(i) != nil {
					t.Fatalf("item %d: %d, ran %+v, err %v", i, x, v.Ran(i), v.Err(i))
				}
			}
		}
	})
}

// TestMapOfChunksPastThePipe: a Map whose chunks' frames pass the pipe's
// 1 MiB (1,800,000 small ints on 2 workers: 225,000 a chunk, 1.1 MB), each
// reported in parts of hundreds of KiB. It hung before the reader of a
// worker's parts stopped writing that worker's next chunk itself.
func TestMapOfChunksPastThePipe(t *testing.T) {
	if testing.Short() {
		t.Skip("1,800,000 items")
	}
	inModes(t, func(t *testing.T, m mode) {
		p := m.pool(t, poold.WithWorkers(2))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		args := make([]int, 1_800_000)
		for i := range args {
			args[i] = 100_000 + i%100_000 // 5 bytes of msgpack each
		}
		v, err := square.MapValues(ctx, p, args)
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range v.Values {
			if want := args[i] * args[i]; x != want {
				t.Fatalf("item %d: %d, want %d", i, x, want)
			}
		}
	})
}
