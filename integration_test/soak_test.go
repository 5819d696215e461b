package integration_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/poold/poold"
)

var (
	soakN    = flag.Int("soak.n", 20000, "tasks in TestSoak (2000 under -short unless given)")
	soakSeed = flag.Uint64("soak.seed", 0, "random seed of TestSoak (0: from the clock)")
)

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// Crash modes of the soak and how often each is drawn. Modes that end the
// worker by itself may sit in a chunk (the pool splits a chunk whose worker
// died); hang needs its own time limit and goes alone.
var soakModes = []string{"panic", "exit", "kill", "segfault", "abort", "fatal", "hang"}

// soakTask is one task of the soak.
type soakTask struct {
	crash string // "" for echo
	code  int    // for exit
	value any    // for echo: int64 or string

	calls   atomic.Int32 // callbacks fired for it
	result  poold.Result[poold.Raw]
	got     bool
	inChunk bool // submitted in a Map chunk of more than one call
}

// maxAttempts is how many times the task may have run: once; twice in a
// chunk, where a call that ran before another call killed the worker lost
// its result with it and runs again (its attempts say so).
func (s *soakTask) maxAttempts() int {
	if s.inChunk {
		return 2
	}
	return 1
}

func (s *soakTask) args() any {
	if s.crash == "" {
		return echoArgs(s.value)
	}
	a := map[string]any{"mode": s.crash}
	if s.crash == "exit" {
		a["code"] = s.code
	}
	return a
}

func (s *soakTask) check() error {
	r := s.result
	if s.crash != "" {
		return checkCrashErr(s.crash, s.code, r, s.maxAttempts())
	}
	if r.Err != nil {
		return fmt.Errorf("echo %v: %v", s.value, r.Err)
	}
	if r.PID == 0 || r.Attempts < 1 || r.Attempts > s.maxAttempts() {
		return fmt.Errorf("echo %v: pid %d, %d attempts", s.value, r.PID, r.Attempts)
	}
	switch want := s.value.(type) {
	case int64:
		var v int64
		if err := r.Value.Decode(&v); err != nil || v != want {
			return fmt.Errorf("echo %d returned %v (%v)", want, v, err)
		}
	case string:
		var v string
		if err := r.Value.Decode(&v); err != nil || v != want {
			return fmt.Errorf("echo %q returned %q (%v)", want, v, err)
		}
	}
	return nil
}

// TestSoak: many tasks on 4 workers, about 1% of them crash tasks of random
// modes, with time limits and worker recycling on, through ApplyAsync and
// chunked MapAsync from several goroutines. Every task gets exactly one
// result (one callback), every echo comes back right, every crash fails
// with its kind, and after Close and Join no worker process, goroutine or
// file descriptor is left.
func TestSoak(t *testing.T) {
	n := *soakN
	if testing.Short() && !flagSet("soak.n") {
		n = 2000
	}
	seed := *soakSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("soak: %d tasks, seed %d (-soak.seed to replay)", n, seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))

	// The tasks, then the calls that submit them: runs of echoes become
	// MapAsync calls (chunked) or single ApplyAsync calls; a crash task goes
	// alone, or with up to two more crash tasks of the modes that end a
	// worker by itself, as one chunk of a map.
	tasks := make([]*soakTask, n)
	type batch struct {
		first, n int
		crash    bool
		chunk    int
	}
	var batches []batch
	crashes := map[string]int{}
	// A task is a crash task with probability 1/120; a quarter of them bring
	// one or two more along in their chunk: about 1% in all.
	crashDraw := func() bool { return rng.IntN(120) == 0 }
	crashNext := crashDraw()
	for i := 0; i < n; {
		if crashNext {
			crashNext = false
			k := 1
			if rng.IntN(4) == 0 {
				k = min(2+rng.IntN(2), n-i)
			}
			for j := range k {
				mode := soakModes[rng.IntN(len(soakModes))]
				for k > 1 && mode == "hang" {
					mode = soakModes[rng.IntN(len(soakModes))]
				}
				st := &soakTask{crash: mode}
				if mode == "exit" {
					st.code = 1 + rng.IntN(200)
				}
				tasks[i+j] = st
				crashes[mode]++
			}
			batches = append(batches, batch{first: i, n: k, crash: true, chunk: k})
			i += k
			crashNext = crashDraw()
			continue
		}
		// A run of echo tasks: one ApplyAsync, or a map of up to 300, up to
		// the next crash task.
		limit := 1
		if rng.IntN(2) == 0 {
			limit = 1 + rng.IntN(300)
		}
		k := 0
		for k < limit && i+k < n && !crashNext {
			st := &soakTask{value: int64(rng.Int64())}
			if rng.IntN(2) == 0 {
				st.value = fmt.Sprintf("v%d-%x", i+k, rng.Uint32())
			}
			tasks[i+k] = st
			k++
			crashNext = crashDraw()
		}
		batches = append(batches, batch{first: i, n: k, chunk: 1 + rng.IntN(16)})
		i += k
	}
	totalCrashes := 0
	for _, c := range crashes {
		totalCrashes += c
	}

	base := fdBaseline(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	start := time.Now()
	p, tag := newPool(t, 4,
		poold.WithMaxTasksPerWorker(500),
		poold.WithTimeout(30*time.Second),
		poold.WithRetries(0),
	)

	// Submit from 4 goroutines, each a share of the batches.
	var (
		mu       sync.Mutex
		applies  = map[int]*poold.AsyncResult[poold.Raw]{} // by task index
		maps     = map[int]*poold.MapResult[poold.Raw]{}   // by first task index
		mapErrs  = map[int]*atomic.Int32{}                 // OnError calls, by map
		badCalls atomic.Int32                              // callbacks for unknown indexes
	)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for bi := g; bi < len(batches); bi += 4 {
				b := batches[bi]
				if b.n == 1 && (b.crash || bi%3 != 0) {
					st := tasks[b.first]
					var opts []poold.CallOption
					if st.crash == "hang" {
						opts = append(opts, poold.Timeout(200*time.Millisecond))
					}
					opts = append(opts,
						poold.OnSuccess(func(poold.Result[poold.Raw]) { st.calls.Add(1) }),
						poold.OnError(func(error) { st.calls.Add(1) }))
					fn := "echo"
					if st.crash != "" {
						fn = "crash"
					}
					a, err := p.ApplyAsync(fn, st.args(), opts...)
					if err != nil {
						t.Errorf("ApplyAsync: %v", err)
						return
					}
					mu.Lock()
					applies[b.first] = a
					mu.Unlock()
					continue
				}
				args := make([]any, b.n)
				for j := range b.n {
					args[j] = tasks[b.first+j].args()
					tasks[b.first+j].inChunk = b.chunk > 1
				}
				fn := "echo"
				if b.crash {
					fn = "crash"
				}
				errs := &atomic.Int32{}
				first, count := b.first, b.n
				m, err := p.MapAsync(fn, args, poold.ChunkSize(b.chunk),
					poold.OnSuccess(func(r poold.Result[poold.Raw]) {
						if r.Index < 0 || r.Index >= count {
							badCalls.Add(1)
							return
						}
						tasks[first+r.Index].calls.Add(1)
					}),
					poold.OnError(func(error) { errs.Add(1) }))
				if err != nil {
					t.Errorf("MapAsync: %v", err)
					return
				}
				mu.Lock()
				maps[b.first], mapErrs[b.first] = m, errs
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	submitted := time.Since(start)

	// Collect every result.
	ctx := ctxT(t, 4*time.Minute)
	for i, a := range applies {
		r, err := a.Get(ctx)
		if err != nil && ctx.Err() != nil {
			t.Fatalf("task %d: no result after 4 minutes", i)
		}
		st := tasks[i]
		if st.calls.Load() != 1 {
			t.Errorf("task %d: %d callbacks before Get returned, want 1", i, st.calls.Load())
		}
		st.result, st.got = r, true
	}
	for first, m := range maps {
		rs, err := m.Get(ctx)
		if rs == nil && err != nil {
			t.Fatalf("map at %d: %v", first, err)
		}
		failed := 0
		for j, r := range rs {
			st := tasks[first+j]
			if r.Index != j {
				t.Errorf("map at %d: result %d has index %d", first, j, r.Index)
			}
			if r.Err != nil {
				failed++
				st.calls.Add(1) // its callback was the map's OnError, counted below
			}
			st.result, st.got = r, true
		}
		if got := int(mapErrs[first].Load()); got != failed {
			t.Errorf("map at %d: %d OnError callbacks for %d failed tasks", first, got, failed)
		}
	}
	wall := time.Since(start)

	// Exactly one result each, and the right one.
	missing, dup, wrongs := 0, 0, 0
	for i, st := range tasks {
		switch c := st.calls.Load(); {
		case !st.got || c == 0:
			missing++
			if missing <= 10 {
				t.Errorf("task %d: no result", i)
			}
		case c > 1:
			dup++
			if dup <= 10 {
				t.Errorf("task %d: %d results", i, c)
			}
		}
		if err := st.check(); err != nil {
			wrongs++
			if wrongs <= 20 {
				t.Errorf("task %d: %v", i, err)
			}
		}
	}
	// Recycling: no worker ran more than its 500 tasks.
	perPID := map[int]int{}
	for _, st := range tasks {
		if st.got && st.result.PID != 0 {
			perPID[st.result.PID]++
		}
	}
	for pid, c := range perPID {
		if c > 500 {
			t.Errorf("worker %d ran %d tasks; it should have retired after 500", pid, c)
		}
	}
	if badCalls.Load() != 0 {
		t.Errorf("%d callbacks with an index outside their map", badCalls.Load())
	}
	if missing+dup+wrongs > 0 {
		t.Errorf("%d tasks without a result, %d with more than one, %d wrong", missing, dup, wrongs)
	}

	stats := p.Stats()
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := p.Join(ctxT(t, 30*time.Second)); err != nil {
		t.Errorf("Join: %v", err)
	}
	if left := liveProcs(tag); len(left) > 0 {
		t.Errorf("worker processes left after Join: %v", left)
	}
	if left := ownWorkers(); len(left) > 0 {
		t.Errorf("child processes left after Join: %v", left)
	}
	checkFDs(t, base)

	var modes []string
	for m, c := range crashes {
		modes = append(modes, fmt.Sprintf("%s %d", m, c))
	}
	sort.Strings(modes)
	t.Logf("soak: %d tasks (%d crash tasks: %s) on 4 workers in %v (submitted in %v): %.0f tasks/s; %d worker pids ran tasks, %d workers started, %d lost, %d start failures; GOMAXPROCS %d",
		n, totalCrashes, strings.Join(modes, ", "), wall.Round(time.Millisecond), submitted.Round(time.Millisecond),
		float64(n)/wall.Seconds(), len(perPID), stats.WorkersStarted, stats.WorkersLost, stats.StartFailures, runtime.GOMAXPROCS(0))
}
