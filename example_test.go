package poold_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/poold/poold"
)

func Example() {
	// A program that embeds the pool registers its task functions in
	// package-level vars, so that its workers (copies of the same binary)
	// build the same registry, and calls poold.Init at the top of main: in
	// a worker process, Init serves tasks and never returns. In this
	// package, main_test.go does both, with TestMain as main:
	//
	//	var reg = poold.NewRegistry()
	//
	//	var square = poold.Register(reg, "square", func(_ context.Context, x int) (int, error) {
	//		return x * x, nil
	//	})
	//
	//	func main() {
	//		poold.Init(reg)
	//		... the rest of this example ...
	//	}
	ctx := context.Background()
	p, err := poold.New(ctx, poold.WithWorkers(2))
	if err != nil {
		fmt.Println(err)
		return
	}

	r, err := square.Apply(ctx, p, 7)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("7 squared is", r.Value)
	fmt.Println("ran in another process:", r.PID != os.Getpid())

	p.Close()
	fmt.Println("join:", p.Join(ctx))
	// Output:
	// 7 squared is 49
	// ran in another process: true
	// join: <nil>
}

func ExampleFunc_Map() {
	ctx := context.Background()
	p, err := poold.New(ctx, poold.WithWorkers(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Terminate()

	rs, err := square.Map(ctx, p, []int{1, 2, 3, 4, 5, 6, 7, 8}, poold.ChunkSize(3))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range rs {
		fmt.Print(r.Value, " ")
	}
	fmt.Println()
	// Output:
	// 1 4 9 16 25 36 49 64
}

func ExampleFunc_IMap() {
	ctx := context.Background()
	p, err := poold.New(ctx, poold.WithWorkers(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Terminate()

	// The input is an iterator, read lazily: IMap pulls the next value
	// only when its window of tasks in flight (here 2) has room, so the
	// input may be endless, or expensive to produce.
	var numbers iter.Seq[int] = func(yield func(int) bool) {
		for i := 1; i <= 5; i++ {
			if !yield(i) {
				return
			}
		}
	}
	for r, err := range square.IMap(ctx, p, numbers, poold.Window(2)) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(r.Index, r.Value)
	}
	// Output:
	// 0 1
	// 1 4
	// 2 9
	// 3 16
	// 4 25
}

func ExampleFunc_IMapErr() {
	ctx := context.Background()
	p, err := poold.New(ctx, poold.WithWorkers(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Terminate()

	// Numbers read from a file, one a line: the input can fail midway
	// (here at "x"). IMapErr reads no further, yields the results of the
	// lines before it, then the input's error, last.
	file := strings.NewReader("1\n2\n3\nx\n5\n")
	numbers := func(yield func(int, error) bool) {
		lines := bufio.NewScanner(file)
		for lines.Scan() {
			n, err := strconv.Atoi(lines.Text())
			if !yield(n, err) {
				return
			}
		}
		if err := lines.Err(); err != nil {
			yield(0, err)
		}
	}
	for r, err := range square.IMapErr(ctx, p, numbers) {
		if err != nil {
			fmt.Println(err)
			fmt.Println("a syntax error:", errors.Is(err, strconv.ErrSyntax))
			continue
		}
		fmt.Println(r.Value)
	}
	// Output:
	// 1
	// 4
	// 9
	// poold: the input failed after 3 values: strconv.Atoi: parsing "x": invalid syntax
	// a syntax error: true
}

func ExampleOnMapSuccess() {
	ctx := context.Background()
	p, err := poold.New(ctx, poold.WithWorkers(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Terminate()

	// Python's map_async(callback=, error_callback=): one callback for the
	// whole Map, with every result, or with its first error.
	sum := poold.OnMapSuccess(func(rs []poold.Result[int]) {
		total := 0
		for _, r := range rs {
			total += r.Value
		}
		fmt.Println("callback: the squares add up to", total)
	})
	failed := poold.OnMapError(func(err error) {
		fmt.Println("error callback: bad arguments:", errors.Is(err, poold.KindBadArgs))
	})

	m, err := square.MapAsync(p, []int{1, 2, 3, 4}, sum, failed)
	if err != nil {
		fmt.Println(err)
		return
	}
	rs, err := m.Get(ctx) // the callback has run by now
	fmt.Println("get:", len(rs), "results, error", err)

	// The untyped methods' results are Raw, and so are their callbacks'.
	raw, err := p.MapAsync("square", []any{1, "two", 3},
		poold.OnMapSuccess(func([]poold.Result[poold.Raw]) { fmt.Println("callback") }), failed)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = raw.Get(ctx)
	fmt.Println("get: bad arguments:", errors.Is(err, poold.KindBadArgs))
	// Output:
	// callback: the squares add up to 30
	// get: 4 results, error <nil>
	// error callback: bad arguments: true
	// get: bad arguments: true
}

func ExamplePool_ApplyAsync() {
	ctx := context.Background()
	p, err := poold.New(ctx, poold.WithWorkers(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Terminate()

	onSuccess := poold.OnSuccess(func(r poold.Result[poold.Raw]) {
		var v int
		if err := r.Value.Decode(&v); err != nil {
			fmt.Println("decode:", err)
			return
		}
		fmt.Println("success callback:", v)
	})
	onError := poold.OnError(func(err error) {
		var te *poold.TaskError
		if errors.As(err, &te) {
			fmt.Println("error callback:", te.Kind, te.Message)
		}
	})

	// The callback runs before Get returns.
	a, err := p.ApplyAsync("square", 9, onSuccess, onError)
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := a.Get(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	var v int
	r.Value.Decode(&v)
	fmt.Println("get:", v)
	ok, _ := a.Successful()
	fmt.Println("successful:", ok)

	b, err := p.ApplyAsync("fail", "out of cheese", onSuccess, onError)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = b.Get(ctx)
	fmt.Println("get: task failed:", errors.Is(err, poold.KindError))
	ok, _ = b.Successful()
	fmt.Println("successful:", ok)
	// Output:
	// success callback: 81
	// get: 81
	// successful: true
	// error callback: error out of cheese
	// get: task failed: true
	// successful: false
}

func ExamplePool_IMapUnordered() {
	ctx := context.Background()
	p, err := poold.New(ctx, poold.WithWorkers(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Terminate()

	args := func(yield func(any) bool) {
		for i := range 6 {
			if !yield(i) {
				return
			}
		}
	}
	var got []int
	for r, err := range p.IMapUnordered(ctx, "square", args) {
		if err != nil {
			fmt.Println(err)
			return
		}
		var v int
		r.Value.Decode(&v)
		got = append(got, v)
	}
	slices.Sort(got) // they come as they finish
	fmt.Println(got)
	// Output:
	// [0 1 4 9 16 25]
}

func ExampleTaskError() {
	ctx := context.Background()
	p, err := poold.New(ctx, poold.WithWorkers(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Terminate()

	// A panic is recovered in the worker, which lives on.
	_, err = explode.Apply(ctx, p, "kaboom")
	fmt.Println("panic:", errors.Is(err, poold.KindPanic))
	var te *poold.TaskError
	if errors.As(err, &te) {
		fmt.Println("kind:", te.Kind)
		fmt.Println("message:", te.Message)
	}

	// A task that ends its process loses that worker; the pool replaces it.
	_, err = exitWith.Apply(ctx, p, 3)
	fmt.Println("worker lost:", errors.Is(err, poold.KindWorkerLost))
	var exit *poold.WorkerExitError
	if errors.As(err, &exit) {
		fmt.Println("exit code:", exit.ExitCode)
	}
	var lost *poold.TaskError
	if errors.As(err, &lost) {
		fmt.Println("the error names the worker:", lost.PID != 0 && lost.PID == exit.PID)
		fmt.Println("the worker that panicked ran it:", lost.PID == te.PID)
	}

	// The pool keeps working.
	r, err := square.Apply(ctx, p, 12)
	fmt.Println("afterwards:", r.Value, err)
	// Output:
	// panic: true
	// kind: panic
	// message: panic: explode: kaboom
	// worker lost: true
	// exit code: 3
	// the error names the worker: true
	// the worker that panicked ran it: true
	// afterwards: 144 <nil>
}

func ExampleWithThreads() {
	// The same pool on goroutines: nothing to start, and as many workers
	// as the work can wait on. Tasks come from the registry given; Init is
	// not needed in a program that only uses threads.
	ctx := context.Background()
	p, err := poold.New(ctx, poold.WithThreads(reg), poold.WithWorkers(100))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Terminate()
	rs, err := sleep.Map(ctx, p, slices.Repeat([]int{50}, 100), poold.ChunkSize(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(rs), "sleeps, all in this process:", rs[0].PID == os.Getpid() && rs[99].PID == os.Getpid())
	fmt.Println("workers:", p.Size())
	// Output:
	// 100 sleeps, all in this process: true
	// workers: 100
}
