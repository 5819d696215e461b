package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machine describes where the figures were taken.
type machine struct {
	CPUs      int
	Model     string
	MemTotal  string
	Kernel    string
	Go        string
	Python    string
	Date      string
	GOMAXPROC int
}

func describeMachine(py *python, pyWhy string) machine {
	m := machine{
		CPUs:      runtime.NumCPU(),
		Model:     cpuModel(),
		MemTotal:  memTotal(),
		Kernel:    strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		Go:        runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		Date:      time.Now().Format("2006-01-02 15:04:05 MST"),
		GOMAXPROC: runtime.GOMAXPROCS(0),
	}
	if py != nil {
		m.Python = py.version + " (" + py.exe + ")"
	} else {
		m.Python = "n/a: " + pyWhy
	}
	return m
}

func (m machine) lines() []string {
	return []string{
		fmt.Sprintf("machine: %d CPUs (nproc), %s, %s RAM, Linux %s, GOMAXPROCS %d", m.CPUs, m.Model, m.MemTotal, m.Kernel, m.GOMAXPROC),
		"go:      " + m.Go,
		"python:  " + m.Python,
		"date:    " + m.Date,
	}
}

func readFile(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return ""
	}
	return string(b)
}

func cpuModel() string {
	for _, l := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	for _, l := range strings.Split(readFile("/proc/meminfo"), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			if kib, err := strconv.ParseFloat(f[1], 64); err == nil {
				return fmt.Sprintf("%.0f GiB", kib/(1<<20))
			}
		}
	}
	return "?"
}

// cpuTimes reads the first line of /proc/stat: total and idle (+iowait)
// jiffies over all CPUs.
func cpuTimes() (total, idle uint64, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	if !s.Scan() {
		return 0, 0, fmt.Errorf("empty /proc/stat")
	}
	fields := strings.Fields(s.Text())[1:]
	for i, x := range fields {
		if i >= 8 { // guest time is already counted in user
			break
		}
		v, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		total += v
		if i == 3 || i == 4 {
			idle += v
		}
	}
	return total, idle, nil
}

// noise is a check of the machine's other load: the share of all CPUs
// busy over d while the harness runs nothing, plus the load average and
// the top CPU users seen by ps.
type noise struct {
	Busy float64 // 0..1 of all CPUs; NaN if unknown
	Load string
	Top  string
}

func checkNoise(d time.Duration) noise {
	n := noise{Busy: -1}
	t0, i0, err0 := cpuTimes()
	time.Sleep(d)
	t1, i1, err1 := cpuTimes()
	if err0 == nil && err1 == nil && t1 > t0 {
		n.Busy = 1 - float64(i1-i0)/float64(t1-t0)
	}
	if f := strings.Fields(readFile("/proc/loadavg")); len(f) >= 3 {
		n.Load = strings.Join(f[:3], " ")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ps", "-eo", "pcpu,etime,comm", "--sort=-pcpu").Output()
	if err == nil {
		lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
		var top []string
		for _, l := range lines[1:min(len(lines), 4)] {
			top = append(top, strings.Join(strings.Fields(string(l)), " "))
		}
		n.Top = strings.Join(top, " | ")
	}
	return n
}

func (n noise) String() string {
	b := "?"
	if n.Busy >= 0 {
		b = fmt.Sprintf("%.1f%% of all cores (%.2f cores)", 100*n.Busy, n.Busy*float64(runtime.NumCPU()))
	}
	return fmt.Sprintf("busy %s; loadavg %s; top: %s", b, n.Load, n.Top)
}
