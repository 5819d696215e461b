package main

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// The memory of a run's processes, sampled from /proc. getrusage's
// ru_maxrss cannot give it: on Linux a process started by fork (or by Go's
// vfork) and exec keeps, as its ru_maxrss, the resident set its parent had
// when it forked, so a worker's figure is at least poold's, and each run's
// at least compare's. VmHWM, the peak of a process's own memory since its
// exec, is exact, but can be read only while the process lives: compare
// samples the run's process tree, and poold reports its own VmHWM at exit.

// Sampling: the tree's resident sets every memSampleEvery (the first after
// memFirstSample), the tree itself (a scan of /proc for the descendants of
// the run) every memScanEvery samples.
const (
	memFirstSample = 50 * time.Millisecond
	memSampleEvery = 200 * time.Millisecond
	memScanEvery   = 5
)

// treeSampler samples the memory of a process and its descendants until
// it is stopped.
type treeSampler struct {
	root  int
	stop  chan struct{}
	done  chan struct{}
	known map[int]bool // the descendants found so far, alive at the last look
	m     memFigures
}

func startSampler(root int) *treeSampler {
	s := &treeSampler{root: root, stop: make(chan struct{}), done: make(chan struct{}), known: map[int]bool{}}
	s.m.Sampled = true
	go s.loop()
	return s
}

func (s *treeSampler) loop() {
	defer close(s.done)
	t := time.NewTimer(memFirstSample)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if n%memScanEvery == 0 {
			s.scan()
		}
		s.sample()
		t.Reset(memSampleEvery)
	}
}

// finish stops the sampling and returns what it found.
func (s *treeSampler) finish() memFigures {
	close(s.stop)
	<-s.done
	return s.m
}

// scan adds to known every live descendant of the root: the processes
// whose parent is the root or a descendant.
func (s *treeSampler) scan() {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	parent := map[int]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == s.root {
			continue
		}
		if pp := procParent(pid); pp > 0 {
			parent[pid] = pp
		}
	}
	for grew := true; grew; {
		grew = false
		for pid, pp := range parent {
			if !s.known[pid] && (pp == s.root || s.known[pp]) {
				s.known[pid], grew = true, true
			}
		}
	}
}

// sample reads the resident sets of the root and its known descendants.
func (s *treeSampler) sample() {
	hwm, rss := procMemory(s.root)
	s.m.RootPeak = max(s.m.RootPeak, hwm)
	total := rss
	for pid := range s.known {
		hwm, rss := procMemory(pid)
		if hwm == 0 && rss == 0 {
			delete(s.known, pid) // gone (a zombie has no memory left either)
			continue
		}
		s.m.ChildPeak = max(s.m.ChildPeak, hwm)
		total += rss
	}
	s.m.TotalPeak = max(s.m.TotalPeak, total)
}

// procParent is a process's parent pid, from /proc/PID/stat; 0 if gone.
func procParent(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// "pid (comm) state ppid ...", where comm may hold anything.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return 0
	}
	pp, _ := strconv.Atoi(string(f[1]))
	return pp
}

// procMemory is a process's VmHWM and VmRSS in bytes; zeros if it is gone.
func procMemory(pid int) (hwm, rss int64) {
	return procStatus(strconv.Itoa(pid))
}
