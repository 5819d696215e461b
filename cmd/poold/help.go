package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/poold/poold/internal/tasks"
)

// help runs "poold help [TOPIC]".
func help(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		_, err := parseFlags([]string{"-h"}, stdout)
		_ = err // flag.ErrHelp, after printing the usage
		return exitOK
	case len(args) == 1 && args[0] == "tasks":
		fmt.Fprint(stdout, taskReference())
		return exitOK
	case len(args) == 1 && args[0] == "compare":
		printCompareUsage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "poold: help %s: unknown topic; poold help tasks describes the built-in tasks, poold help compare the compare command, poold -h the rest\n", strings.Join(args, " "))
	return exitUsage
}

// taskNames lists the built-in task names as every message does.
func taskNames() string { return strings.Join(newRegistry().Names(), ", ") }

// helpWidth is where the reference wraps its lines.
const helpWidth = 79

// taskReference describes every built-in task: its arguments, with their
// types and defaults, and its result. The README holds a copy.
func taskReference() string {
	var b strings.Builder
	b.WriteString(wrap("Built-in tasks: "+taskNames()+". A task's \"args\" is an object with the "+
		"fields below; a field left out takes its default. An integer field also "+
		"takes a whole number written as a float (2.0), up to 2^53. With "+
		"--worker-cmd, the workers may know other tasks.", 0, helpWidth))
	docs := tasks.Builtins()
	width := len("returns")
	for _, d := range docs {
		for _, f := range d.Fields() {
			width = max(width, len(f.Name))
		}
	}
	indent := 2 + width + 2
	for _, d := range docs {
		fmt.Fprintf(&b, "\n%s: %s\n", d.Name, d.Summary)
		for _, f := range d.Fields() {
			what := f.Type + ", default " + f.Default
			if f.Default == "required" {
				what = f.Type + ", required"
			}
			b.WriteString(wrap(fmt.Sprintf("  %-*s  %s: %s", width, f.Name, what, f.Doc), indent, helpWidth))
		}
		b.WriteString(wrap(fmt.Sprintf("  %-*s  %s", width, "returns", d.Result), indent, helpWidth))
	}
	return b.String()
}

// wrap breaks s into lines of at most width characters (a longer word
// stays whole), the lines after the first indented by indent spaces; each
// line ends with a newline.
func wrap(s string, indent, width int) string {
	var b strings.Builder
	line, lineLen := "", 0
	for i, word := range strings.Split(s, " ") {
		n := len([]rune(word))
		switch {
		case i == 0:
			line, lineLen = word, n
		case lineLen+1+n > width && strings.TrimSpace(line) != "":
			b.WriteString(line + "\n")
			line, lineLen = strings.Repeat(" ", indent)+word, indent+n
		default:
			line, lineLen = line+" "+word, lineLen+1+n
		}
	}
	b.WriteString(line + "\n")
	return b.String()
}
