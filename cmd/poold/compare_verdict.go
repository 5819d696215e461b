package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The rules by which poold compare weighs its figures. Their wording is
// printed with every report and in compare's help.
const (
	// noiseFraction: a difference of wall time is noise when the slower
	// mode's median run took less than this much longer than the faster's.
	noiseFraction = 0.05
	// cpuNoiseFloor: a difference of CPU time under this is noise
	// whatever its share (the clock's accounting is coarse).
	cpuNoiseFloor = 20 * time.Millisecond
	// The work is CPU-bound from cpuBoundFrom utilisation up, waiting
	// below waitingBelow, and mixed between.
	cpuBoundFrom = 0.5
	waitingBelow = 0.2
	// shortRun: a run shorter than this is mostly start-up.
	shortRun = 200 * time.Millisecond
)

const noiseRule = "a difference of wall time is within noise when the slower mode's median run took less than 5 % longer than the faster's, " +
	"or, with --reps 2 or more, when the two modes' ranges of wall times (fastest to slowest run) overlap"

const utilisationRule = "CPU time (user + sys, workers included) ÷ (wall time × min(workers, CPUs)): " +
	"the share of the CPUs that this many workers could keep busy which they did keep busy (workers beyond the CPUs cannot add any); " +
	"CPU-bound from 50 %, waiting under 20 %, mixed between; judged on the threads side, whose CPU time is the tasks' own with the least of the pool's, " +
	"or on the processes side when threads lost its process"

// verdict is what compare concludes for one count.
type verdict struct {
	Faster   string  // "processes" or "threads"; "" when a mode lost its process
	Ratio    float64 // the slower mode's median wall time ÷ the faster's
	Noise    bool    // the difference of wall times is within noise
	Work     string  // "cpu-bound", "mixed" or "waiting"; "" when both lost their process
	Util     float64
	UtilMode string // the mode whose utilisation judged the work

	// Isolation is what processes cost over threads (negative: saved).
	IsolationWall time.Duration
	IsolationCPU  time.Duration
	IsolationMem  int64 // an upper bound: poold's peak and workers × the largest worker's, over threads' peak
	CPUNoise      bool  // the difference of CPU times is within noise

	Keep string // the mode to keep; "" when both lost their process
	Text []string
}

// weigh picks each side's median run and draws each count's verdict.
func (c *comparison) weigh() {
	for _, cr := range c.counts {
		for _, s := range cr.Sides {
			s.pickRep()
		}
		cr.Verdict = c.verdictFor(cr)
	}
}

// pickRep picks the run whose figures stand for the side: the median of
// the runs that reached their end, by wall time (the lower median of an
// even count), or the run that lost its process.
func (s *side) pickRep() {
	if len(s.Runs) == 0 {
		s.Rep = s.Lost
		return
	}
	runs := slices.Clone(s.Runs)
	slices.SortFunc(runs, func(a, b *sideRun) int { return cmp.Compare(a.Wall, b.Wall) })
	s.Rep = runs[(len(runs)-1)/2]
}

// wallRange is the fastest and slowest wall time of the side's runs.
func (s *side) wallRange() (lo, hi time.Duration) {
	for i, r := range s.Runs {
		if i == 0 || r.Wall < lo {
			lo = r.Wall
		}
		if r.Wall > hi {
			hi = r.Wall
		}
	}
	return lo, hi
}

// utilisation is the run's CPU time over what workers could use.
func (c *comparison) utilisation(r *sideRun, workers int) float64 {
	if r == nil || r.Wall <= 0 {
		return 0
	}
	return float64(r.CPU()) / (float64(r.Wall) * float64(max(1, min(workers, c.cpus))))
}

// memory is what the run held at its peak: the largest sampled sum of
// the resident sets of its processes (at least poold's own peak); where
// nothing is sampled, an upper bound: poold's peak and, in processes mode,
// as many workers as run at once, each at the largest child's ru_maxrss.
// 0 when unknown.
func (r *sideRun) memory(workers int) int64 {
	if r == nil {
		return 0
	}
	if r.Mem.Sampled {
		return max(r.Mem.TotalPeak, r.parentPeak())
	}
	if r.Usage == nil {
		return 0
	}
	if r.Mode == "threads" {
		return r.parentPeak()
	}
	return r.parentPeak() + int64(workers)*r.childPeak()
}

// workWords says each class of workClass in words, for compare's verdict
// and the run summary.
var workWords = map[string]string{
	"cpu-bound": "CPU-bound",
	"waiting":   "waiting (sleeping, on I/O or on other programs)",
	"mixed":     "mixed, partly computing and partly waiting",
}

func workClass(u float64) string {
	switch {
	case u >= cpuBoundFrom:
		return "cpu-bound"
	case u < waitingBelow:
		return "waiting"
	default:
		return "mixed"
	}
}

func (c *comparison) verdictFor(cr *countResult) *verdict {
	p, t := cr.Sides[0], cr.Sides[1]
	v := &verdict{}
	if p.Rep == nil || t.Rep == nil {
		v.Text = append(v.Text, "Not compared: compare was interrupted before both modes had run.")
		return v
	}
	if t.Lost == nil {
		v.UtilMode = "threads"
	} else if p.Lost == nil {
		v.UtilMode = "processes"
	}
	if v.UtilMode != "" {
		s := p
		if v.UtilMode == "threads" {
			s = t
		}
		v.Util = c.utilisation(s.Rep, cr.Workers)
		v.Work = workClass(v.Util)
	}
	switch {
	case p.Lost != nil && t.Lost != nil:
		v.Text = append(v.Text, fmt.Sprintf("Both modes lost their process: processes %s, threads %s. There is nothing to compare.",
			c.lostPhrase(p.Lost), c.lostPhrase(t.Lost)))
		return v
	case p.Lost != nil || t.Lost != nil:
		lost, kept := t, p
		if p.Lost != nil {
			lost, kept = p, t
		}
		v.Keep = kept.Mode
		v.Text = append(v.Text, fmt.Sprintf("%s lost its process (%s); %s ran to its end, with %s.",
			lost.Mode, c.lostPhrase(lost.Lost), kept.Mode, resultsPhrase(kept.Rep)))
		v.Text = append(v.Text, c.workSentence(v, kept, cr.Workers))
		if kept.Mode == "processes" {
			v.Text = append(v.Text, fmt.Sprintf("Keep processes: isolation kept the run alive (%d of %d tasks succeeded), where threads lost its process and %d of its %d results.",
				kept.Rep.OK, c.plan.tasks, c.plan.tasks-lost.Lost.Results(), c.plan.tasks))
		} else {
			v.Text = append(v.Text, "Keep threads: the processes mode could not run this file to its end.")
		}
		return v
	}

	pw, tw := p.Rep.Wall, t.Rep.Wall
	v.Faster, v.Ratio = "threads", ratio(pw, tw)
	if pw < tw {
		v.Faster, v.Ratio = "processes", ratio(tw, pw)
	}
	v.Noise = v.Ratio-1 < noiseFraction || rangesOverlap(p, t)
	v.IsolationWall = pw - tw
	v.IsolationCPU = p.Rep.CPU() - t.Rep.CPU()
	v.CPUNoise = absDuration(v.IsolationCPU) < cpuNoiseFloor ||
		float64(absDuration(v.IsolationCPU)) < noiseFraction*float64(max(p.Rep.CPU(), t.Rep.CPU()))
	if pm, tm := p.Rep.memory(cr.Workers), t.Rep.memory(cr.Workers); pm > 0 && tm > 0 {
		v.IsolationMem = pm - tm
	}

	if v.Noise {
		v.Text = append(v.Text, fmt.Sprintf("Neither mode was faster beyond noise: processes took %s, threads %s (%s was %.2f× faster, within noise).",
			fmtDuration(pw), fmtDuration(tw), v.Faster, v.Ratio))
	} else {
		slower := "processes"
		if v.Faster == "processes" {
			slower = "threads"
		}
		v.Text = append(v.Text, fmt.Sprintf("%s was faster: %.2f× (wall time %s against %s for %s), beyond noise.",
			capitalize(v.Faster), v.Ratio, fmtDuration(min(pw, tw)), fmtDuration(max(pw, tw)), slower))
	}
	if min(pw, tw) < shortRun {
		v.Text = append(v.Text, fmt.Sprintf("The runs were short (under %s): starting the process and its workers weighs on every figure; a larger file tells more.",
			fmtDuration(shortRun)))
	}
	if p.Rep.OK != t.Rep.OK || p.Rep.Failed != t.Rep.Failed {
		v.Text = append(v.Text, fmt.Sprintf("The modes' results differ: processes %s, threads %s.", resultsPhrase(p.Rep), resultsPhrase(t.Rep)))
	}
	v.Text = append(v.Text, c.workSentence(v, t, cr.Workers))
	v.Text = append(v.Text, c.isolationSentence(v, p, t, cr.Workers))
	switch {
	case v.Noise:
		v.Keep = "processes"
		v.Text = append(v.Text, "Keep processes: as fast here, and a task that crashes then costs one task, not the run.")
	case v.Faster == "threads":
		v.Keep = "threads"
		v.Text = append(v.Text, fmt.Sprintf("Keep threads: %.2f× faster here; but a task that crashes (segfault, os.Exit) then ends the whole run.", v.Ratio))
	default:
		v.Keep = "processes"
		v.Text = append(v.Text, fmt.Sprintf("Keep processes: %.2f× faster here, and isolated.", v.Ratio))
	}
	return v
}

// workSentence says whether the work was CPU-bound or waiting.
func (c *comparison) workSentence(v *verdict, s *side, workers int) string {
	r := s.Rep
	how := fmt.Sprintf("%s: CPU time %s ÷ (wall time %s × min(%s, %s))", s.Mode, fmtDuration(r.CPU()), fmtDuration(r.Wall),
		plural(workers, "worker"), plural(c.cpus, "CPU"))
	pct := fmt.Sprintf("%.0f%%", 100*v.Util)
	switch v.Work {
	case "cpu-bound":
		return fmt.Sprintf("The work was %s: it kept %s of the CPUs its workers could use busy (%s).", workWords[v.Work], pct, how)
	case "waiting":
		return fmt.Sprintf("The work was %s: its workers kept only %s of the CPUs they could use busy (%s); "+
			"such work gains from more workers, which threads make cheap.", workWords[v.Work], pct, how)
	default:
		return fmt.Sprintf("The work was %s: its workers kept %s of the CPUs they could use busy (%s).", workWords["mixed"], pct, how)
	}
}

// isolationSentence says what the processes' isolation cost over threads.
func (c *comparison) isolationSentence(v *verdict, p, t *side, workers int) string {
	var costs []string
	if !v.Noise && v.IsolationWall > 0 {
		costs = append(costs, fmt.Sprintf("%s of wall time (+%.0f%%)", fmtDuration(v.IsolationWall), 100*(v.Ratio-1)))
	}
	if !v.CPUNoise && v.IsolationCPU > 0 {
		costs = append(costs, fmt.Sprintf("%s of CPU time (+%.0f%%)", fmtDuration(v.IsolationCPU),
			100*float64(v.IsolationCPU)/float64(max(t.Rep.CPU(), time.Millisecond))))
	}
	mem := ""
	if pm, tm := p.Rep.memory(workers), t.Rep.memory(workers); pm > 0 && tm > 0 {
		how := fmt.Sprintf("%s of up to %s each beside poold's %s, against one process of %s", workerProcesses(workers),
			fmtBytes(p.Rep.childPeak()), fmtBytes(p.Rep.parentPeak()), fmtBytes(tm))
		if !p.Rep.Mem.Sampled {
			how += "; an upper bound, from getrusage"
		}
		mem = "no more memory (" + how + ")"
		if v.IsolationMem > 0 {
			mem = fmtBytes(v.IsolationMem) + " more memory at the peak (" + how + ")"
		}
	}
	if len(costs) == 0 {
		s := "Isolation cost nothing measurable in time here (wall and CPU time within noise)"
		if mem != "" {
			s += ", and " + mem
		}
		return s + "."
	}
	if mem != "" {
		costs = append(costs, mem)
	}
	return "Isolation cost " + joinAnd(costs) + "."
}

// lostPhrase says how a run lost its process and what it printed first:
// "signal SIGSEGV after 12 of 40 results".
func (c *comparison) lostPhrase(r *sideRun) string {
	return fmt.Sprintf("%s after %d of %d results", r.lostHow(), r.Results(), c.plan.tasks)
}

// resultsPhrase: "16 ok, 1 failed (worker_lost 1)".
func resultsPhrase(r *sideRun) string {
	s := fmt.Sprintf("%d ok, %d failed", r.OK, r.Failed)
	if r.Failed > 0 {
		s += " (" + kindsPhrase(r.Kinds) + ")"
	}
	return s
}

// kindsPhrase: "timeout 2, worker_lost 1", by kind; "none" when empty.
func kindsPhrase(kinds map[string]int) string {
	if len(kinds) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKinds(kinds) {
		parts = append(parts, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKinds(kinds map[string]int) []string {
	keys := make([]string, 0, len(kinds))
	for k := range kinds {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func workerProcesses(n int) string {
	if n == 1 {
		return "1 worker process"
	}
	return fmt.Sprintf("%d worker processes", n)
}

func rangesOverlap(p, t *side) bool {
	if len(p.Runs) < 2 || len(t.Runs) < 2 {
		return false
	}
	plo, phi := p.wallRange()
	tlo, thi := t.wallRange()
	return plo <= thi && tlo <= phi
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 1
	}
	return float64(a) / float64(b)
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// joinAnd joins "a", "b" and "c" as "a, b and c".
func joinAnd(parts []string) string {
	if len(parts) <= 1 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// fmtDuration rounds d for a table: 4.05s, 120ms, 1.2ms, 850µs.
func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0fms", ms(d))
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", ms(d))
	default:
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
}

// fmtBytes: 9.8 MiB, 512 KiB.
func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", n>>10)
	}
}
