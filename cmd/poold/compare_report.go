package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// exitStatus is compare's: 0 when every run of both modes reached its end
// and every task succeeded; 1 when a task failed in some run, or a mode
// lost its process (or could not start); 128 + the signal's number when
// interrupted. A usage or task-file error (2) returns before any run.
func (c *comparison) exitStatus() int {
	if sig := c.interrupted(); sig != 0 {
		return exitCode(sig)
	}
	for _, cr := range c.counts {
		for _, s := range cr.Sides {
			if s.Lost != nil {
				return exitFailed
			}
			for _, r := range s.Runs {
				if r.Failed > 0 {
					return exitFailed
				}
			}
		}
	}
	return exitOK
}

// compareRow is one measure of the table: its label, and its value in a
// side's column.
type compareRow struct {
	label string
	value func(c *comparison, cr *countResult, s *side) string
}

var compareRows = []compareRow{
	{"wall time", func(_ *comparison, _ *countResult, s *side) string { return fmtDuration(s.Rep.Wall) }},
	{"wall time, range of runs", func(_ *comparison, _ *countResult, s *side) string {
		if len(s.Runs) < 2 {
			return "-"
		}
		lo, hi := s.wallRange()
		return fmt.Sprintf("%s–%s (%d)", fmtDuration(lo), fmtDuration(hi), len(s.Runs))
	}},
	{"CPU time (user+sys)", func(_ *comparison, _ *countResult, s *side) string { return fmtDuration(s.Rep.CPU()) }},
	{"  in poold", usageValue(func(u *usageReport) string { return fmtDuration(msDuration(u.UserMS + u.SysMS)) })},
	{"  in child processes", usageValue(func(u *usageReport) string {
		return fmtDuration(msDuration(u.ChildrenUserMS + u.ChildrenSysMS))
	})},
	{"utilisation", func(c *comparison, cr *countResult, s *side) string {
		return fmt.Sprintf("%.0f%%", 100*c.utilisation(s.Rep, cr.Workers))
	}},
	{"peak memory, poold", func(_ *comparison, _ *countResult, s *side) string { return bytesOrDash(s.Rep.parentPeak()) }},
	{"peak memory, largest child", func(_ *comparison, _ *countResult, s *side) string { return bytesOrDash(s.Rep.childPeak()) }},
	{"peak memory, all processes", func(_ *comparison, cr *countResult, s *side) string {
		if !s.Rep.Mem.Sampled {
			return "-"
		}
		return bytesOrDash(s.Rep.memory(cr.Workers))
	}},
	{"tasks per second", func(_ *comparison, _ *countResult, s *side) string { return fmtRate(s.Rep) }},
	{"results", func(_ *comparison, _ *countResult, s *side) string {
		return fmt.Sprintf("%d ok, %d failed", s.Rep.OK, s.Rep.Failed)
	}},
	{"failures by kind", func(_ *comparison, _ *countResult, s *side) string { return kindsPhrase(s.Rep.Kinds) }},
	{"its process", func(_ *comparison, _ *countResult, s *side) string {
		if s.Lost != nil {
			return "LOST: " + s.Lost.lostHow()
		}
		return "ran to its end"
	}},
}

// usageValue shows a figure of the run's usage report; "-" when the run
// did not reach its end, and wrote none.
func usageValue(f func(*usageReport) string) func(*comparison, *countResult, *side) string {
	return func(_ *comparison, _ *countResult, s *side) string {
		if s.Rep.Usage == nil {
			return "-"
		}
		return f(s.Rep.Usage)
	}
}

func bytesOrDash(n int64) string {
	if n <= 0 {
		return "-"
	}
	return fmtBytes(n)
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

func tasksPerSecond(r *sideRun) float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(r.Results()) / r.Wall.Seconds()
}

func fmtRate(r *sideRun) string {
	switch v := tasksPerSecond(r); {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// printText prints the report for people: a table per count, rows the
// measures and columns the modes, then the verdict in words.
func (c *comparison) printText(w io.Writer) {
	fmt.Fprintf(w, "poold compare: %s, %s, %s; %s of each mode per count, alternating; each column shows its median run\n",
		c.plan.name, plural(c.plan.tasks, "task"), plural(c.cpus, "CPU"), plural(c.cc.reps, "run"))
	labelWidth := 0
	for _, row := range compareRows {
		labelWidth = max(labelWidth, len(row.label))
	}
	for _, cr := range c.counts {
		if cr.Sides[0].Rep == nil && cr.Sides[1].Rep == nil {
			continue
		}
		cells := make([][2]string, len(compareRows))
		widths := [2]int{len("processes"), len("threads")}
		for i, row := range compareRows {
			for j, s := range cr.Sides {
				v := "not run"
				if s.Rep != nil {
					v = row.value(c, cr, s)
				}
				cells[i][j] = v
				widths[j] = max(widths[j], len([]rune(v)))
			}
		}
		fmt.Fprintf(w, "\n%-*s  %-*s  %s\n", labelWidth+2, fmt.Sprintf("-n %d (%s)", cr.N, plural(cr.Workers, "worker")),
			widths[0], "processes", "threads")
		for i, row := range compareRows {
			fmt.Fprintf(w, "  %-*s  %s  %s\n", labelWidth, row.label, padRunes(cells[i][0], widths[0]), cells[i][1])
		}
		for _, s := range cr.Sides {
			if s.Lost == nil {
				continue
			}
			fmt.Fprintf(w, "\n  %s: lost its process: %s\n", s.Mode, c.lostPhrase(s.Lost))
			if tail := lastLines(s.Lost.Stderr, 6); len(tail) > 0 {
				fmt.Fprintln(w, "  its last lines on stderr:")
				for _, l := range tail {
					fmt.Fprintf(w, "    | %s\n", l)
				}
			}
		}
		fmt.Fprintln(w)
		for _, t := range cr.Verdict.Text {
			fmt.Fprint(w, wrap("  "+t, 2, helpWidth))
		}
	}
	if best := c.fastest(); best != "" && len(c.counts) > 1 {
		fmt.Fprintf(w, "\nFastest of all: %s.\n", best)
	}
	if sig := c.interrupted(); sig != 0 {
		fmt.Fprintf(w, "\nInterrupted by %s: the report covers the runs that finished.\n", signalName(sig))
	}
	fmt.Fprint(w, "\n"+wrap("Noise: "+noiseRule+".", 0, helpWidth))
	fmt.Fprint(w, wrap("Utilisation: "+utilisationRule+".", 0, helpWidth))
}

func padRunes(s string, width int) string {
	return s + strings.Repeat(" ", max(0, width-len([]rune(s))))
}

func lastLines(lines []string, n int) []string {
	return lines[max(0, len(lines)-n):]
}

// fastest names the quickest mode and count among the runs that reached
// their end: "threads with -n 64 (1.76s)".
func (c *comparison) fastest() string {
	var best *sideRun
	for _, cr := range c.counts {
		for _, s := range cr.Sides {
			if s.Lost == nil && s.Rep != nil && (best == nil || s.Rep.Wall < best.Wall) {
				best = s.Rep
			}
		}
	}
	if best == nil {
		return ""
	}
	return fmt.Sprintf("%s with -n %d (%s)", best.Mode, best.N, fmtDuration(best.Wall))
}

// The --json report: one object. compare's help lists its fields.
type compareJSON struct {
	File            string      `json:"file"`
	Tasks           int         `json:"tasks"`
	CPUs            int         `json:"cpus"`
	Reps            int         `json:"reps"`
	Counts          []countJSON `json:"counts"`
	Fastest         string      `json:"fastest,omitempty"`
	Interrupted     string      `json:"interrupted,omitempty"`
	ExitStatus      int         `json:"exit_status"`
	NoiseRule       string      `json:"noise_rule"`
	UtilisationRule string      `json:"utilisation_rule"`
}

type countJSON struct {
	N         int          `json:"n"`
	Workers   int          `json:"workers"`
	Processes *sideJSON    `json:"processes"`
	Threads   *sideJSON    `json:"threads"`
	Verdict   *verdictJSON `json:"verdict"`
}

type sideJSON struct {
	Runs           int            `json:"runs"`
	WallMS         float64        `json:"wall_ms"`
	WallMinMS      float64        `json:"wall_min_ms"`
	WallMaxMS      float64        `json:"wall_max_ms"`
	CPUMS          float64        `json:"cpu_ms"`
	UserMS         float64        `json:"user_ms"`
	SysMS          float64        `json:"sys_ms"`
	ParentCPUMS    *float64       `json:"parent_cpu_ms,omitempty"`
	ChildrenCPUMS  *float64       `json:"children_cpu_ms,omitempty"`
	Utilisation    float64        `json:"utilisation"`
	ParentPeak     int64          `json:"parent_peak_bytes,omitempty"`
	ChildPeak      int64          `json:"child_peak_bytes,omitempty"`
	TotalPeak      int64          `json:"total_peak_bytes,omitempty"`
	MemorySampled  bool           `json:"memory_sampled"`
	TasksPerSecond float64        `json:"tasks_per_second"`
	Results        int            `json:"results"`
	OK             int            `json:"ok"`
	Failed         int            `json:"failed"`
	Failures       map[string]int `json:"failures"`
	Lost           *lostJSON      `json:"lost,omitempty"`
}

type lostJSON struct {
	How        string   `json:"how"`
	Signal     string   `json:"signal,omitempty"`
	ExitStatus *int     `json:"exit_status,omitempty"`
	Results    int      `json:"results"`
	Tasks      int      `json:"tasks"`
	Stderr     []string `json:"stderr"`
}

type verdictJSON struct {
	Faster      string         `json:"faster"`
	Ratio       float64        `json:"ratio"`
	WithinNoise bool           `json:"within_noise"`
	Work        string         `json:"work"`
	Utilisation float64        `json:"utilisation"`
	JudgedOn    string         `json:"judged_on"`
	Isolation   *isolationJSON `json:"isolation,omitempty"`
	Keep        string         `json:"keep"`
	Text        string         `json:"text"`
}

type isolationJSON struct {
	WallMS         float64 `json:"wall_ms"`
	CPUMS          float64 `json:"cpu_ms"`
	CPUWithinNoise bool    `json:"cpu_within_noise"`
	MemoryBytes    int64   `json:"memory_bytes"`
}

// printJSON prints the report as one JSON object.
func (c *comparison) printJSON(w io.Writer) {
	out := compareJSON{
		File: c.plan.name, Tasks: c.plan.tasks, CPUs: c.cpus, Reps: c.cc.reps, Counts: []countJSON{},
		Fastest: c.fastest(), ExitStatus: c.exitStatus(), NoiseRule: noiseRule, UtilisationRule: utilisationRule,
	}
	if sig := c.interrupted(); sig != 0 {
		out.Interrupted = signalName(sig)
	}
	for _, cr := range c.counts {
		cj := countJSON{N: cr.N, Workers: cr.Workers, Processes: c.sideJSON(cr, cr.Sides[0]), Threads: c.sideJSON(cr, cr.Sides[1])}
		v := cr.Verdict
		cj.Verdict = &verdictJSON{Faster: v.Faster, Ratio: v.Ratio, WithinNoise: v.Noise, Work: v.Work, Utilisation: v.Util,
			JudgedOn: v.UtilMode, Keep: v.Keep, Text: strings.Join(v.Text, " ")}
		if cr.Sides[0].Lost == nil && cr.Sides[1].Lost == nil && cr.Sides[0].Rep != nil && cr.Sides[1].Rep != nil {
			cj.Verdict.Isolation = &isolationJSON{WallMS: ms(v.IsolationWall), CPUMS: ms(v.IsolationCPU), CPUWithinNoise: v.CPUNoise, MemoryBytes: v.IsolationMem}
		}
		out.Counts = append(out.Counts, cj)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

func (c *comparison) sideJSON(cr *countResult, s *side) *sideJSON {
	r := s.Rep
	if r == nil {
		return nil
	}
	sj := &sideJSON{
		Runs: len(s.Runs), WallMS: ms(r.Wall), CPUMS: ms(r.CPU()), UserMS: ms(r.User), SysMS: ms(r.Sys),
		Utilisation: c.utilisation(r, cr.Workers), TasksPerSecond: tasksPerSecond(r),
		ParentPeak: r.parentPeak(), ChildPeak: r.childPeak(), TotalPeak: r.memory(cr.Workers), MemorySampled: r.Mem.Sampled,
		Results: r.Results(), OK: r.OK, Failed: r.Failed, Failures: r.Kinds,
	}
	if len(s.Runs) > 0 {
		lo, hi := s.wallRange()
		sj.WallMinMS, sj.WallMaxMS = ms(lo), ms(hi)
	} else {
		sj.WallMinMS, sj.WallMaxMS = sj.WallMS, sj.WallMS
	}
	if u := r.Usage; u != nil {
		parent, children := u.UserMS+u.SysMS, u.ChildrenUserMS+u.ChildrenSysMS
		sj.ParentCPUMS, sj.ChildrenCPUMS = &parent, &children
	}
	if s.Lost != nil {
		l := s.Lost
		lj := &lostJSON{How: l.lostHow(), Results: l.Results(), Tasks: c.plan.tasks, Stderr: l.Stderr}
		if l.Signal != 0 {
			lj.Signal = signalName(l.Signal)
		} else if l.Err == nil {
			lj.ExitStatus = &l.Status
		}
		if lj.Stderr == nil {
			lj.Stderr = []string{}
		}
		sj.Lost = lj
	}
	return sj
}
