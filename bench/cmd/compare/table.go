package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// Row is one line of the comparison table: a poold figure, what it is
// compared with, the ratio poold ÷ comparison, and the target it is held to.
type Row struct {
	ID     string // "1a": workload number, then a letter
	What   string
	Poold  string  // the poold figure, formatted
	Vs     string  // the comparison: what, and its figure
	Ratio  float64 // poold ÷ comparison; NaN when either is missing
	Target string  // the target; "" for a row given for information
	Status string  // MET, NOT MET, n/a, info or ERROR
	Note   string
}

const (
	statusMet    = "MET"
	statusNotMet = "NOT MET"
	statusNA     = "n/a"
	statusInfo   = "info"
	statusError  = "ERROR"
)

// target is what a row is held to: its text and its test on the poold
// figure and the ratio.
type target struct {
	text string
	ok   func(poold, ratio float64) bool
}

// ratioAtLeast: poold ÷ comparison ≥ x.
func ratioAtLeast(x float64) *target {
	return &target{fmt.Sprintf("≥ %g×", x), func(_, r float64) bool { return r >= x }}
}

// ratioAtMost: poold ÷ comparison ≤ x.
func ratioAtMost(x float64) *target {
	return &target{fmt.Sprintf("≤ %g×", x), func(_, r float64) bool { return r <= x }}
}

// fig is one figure: its value (NaN: not measured) and how to print it.
type fig struct {
	v    float64
	text string
}

func newFig(v float64, format func(float64) string) fig {
	if math.IsNaN(v) {
		return fig{v: v, text: "n/a"}
	}
	return fig{v: v, text: format(v)}
}

var naFig = fig{v: math.NaN(), text: "n/a"}

// mkRow builds a row from the poold figure p, the comparison c (labelled),
// and the target t (nil: information only). The ratio is p ÷ c.
func mkRow(id, what string, p fig, label string, c fig, t *target, note string) Row {
	r := Row{ID: id, What: what, Poold: p.text, Vs: label + " " + c.text, Ratio: p.v / c.v, Note: note}
	if math.IsNaN(c.v) || math.IsNaN(p.v) || c.v == 0 {
		r.Ratio = math.NaN()
	}
	switch {
	case t == nil:
		r.Status = statusInfo
	case math.IsNaN(r.Ratio):
		r.Target, r.Status = t.text, statusNA
	case t.ok(p.v, r.Ratio):
		r.Target, r.Status = t.text, statusMet
	default:
		r.Target, r.Status = t.text, statusNotMet
	}
	return r
}

func (r Row) ratioText() string {
	if math.IsNaN(r.Ratio) {
		return "n/a"
	}
	if r.Ratio < 0.001 {
		return fmt.Sprintf("%.1e×", r.Ratio)
	}
	if r.Ratio < 0.1 {
		return fmt.Sprintf("%.3f×", r.Ratio)
	}
	return fmt.Sprintf("%.2f×", r.Ratio)
}

func (r Row) targetText() string {
	if r.Target == "" {
		return "—"
	}
	return r.Target
}

// printTable writes rows as an aligned plain-text table, then the notes.
func printTable(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tworkload\tpoold\tcompared with\tratio\ttarget\tresult")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.What, r.Poold, r.Vs, r.ratioText(), r.targetText(), r.Status)
	}
	tw.Flush()
	printNotes(w, rows, "")
}

func printNotes(w io.Writer, rows []Row, bullet string) {
	first := true
	for _, r := range rows {
		if r.Note == "" {
			continue
		}
		if first {
			fmt.Fprintln(w, "\nNotes:")
			first = false
		}
		fmt.Fprintf(w, "%s%s: %s\n", bullet, r.ID, r.Note)
	}
}

// markdownTable writes rows as a Markdown table, then the notes.
func markdownTable(w io.Writer, rows []Row) {
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	fmt.Fprintln(w, "| # | workload | poold | compared with | ratio | target | result |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		st := r.Status
		if st == statusMet || st == statusNotMet || st == statusError {
			st = "**" + st + "**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n",
			r.ID, esc(r.What), esc(r.Poold), esc(r.Vs), r.ratioText(), esc(r.targetText()), st)
	}
	printNotes(w, rows, "- ")
}
