package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// poold run [flags] -- COMMAND ARG... [::: A B C | :::: FILE] runs COMMAND
// once per argument, as GNU parallel does: each argument becomes a built-in
// exec task, and the entries go through the same runner as a task file's.

// cmdLine is the command of poold run and where its arguments come from.
type cmdLine struct {
	words []string // the command, with its replacement strings
	args  []string // the arguments after :::; nil when read from a file
	file  string   // the file after ::::, "-" for stdin; "" with ::: or nothing
	list  bool     // the arguments were given after :::
}

// replacements are GNU parallel's replacement strings.
var replacements = []string{"{}", "{#}", "{.}", "{/}", "{//}", "{/.}"}

// parseRun splits poold run's command line: the flags, "--", the command,
// then ::: and arguments or :::: and a file.
func parseRun(args []string, stdout io.Writer) (*config, *cmdLine, error) {
	sep := -1
	for i, a := range args {
		if a == "--" {
			sep = i
			break
		}
	}
	flags := args
	if sep >= 0 {
		flags = args[:sep]
	}
	cfg, err := parseFlagsFor(true, flags, stdout)
	if err != nil || cfg.version {
		return cfg, nil, err
	}
	if sep < 0 {
		return nil, nil, usagef("run: no command: poold run [flags] -- COMMAND ARG... [::: ARGS... | :::: FILE]")
	}
	rest := args[sep+1:]
	cl := &cmdLine{file: "-"}
	i := 0
	for i < len(rest) && rest[i] != ":::" && rest[i] != "::::" {
		i++
	}
	cl.words = rest[:i]
	if len(cl.words) == 0 {
		return nil, nil, usagef("run: no command after --: poold run [flags] -- COMMAND ARG...")
	}
	if i < len(rest) {
		marker, after := rest[i], rest[i+1:]
		for _, a := range after {
			if a == ":::" || a == "::::" {
				return nil, nil, usagef("run: only one %s or :::: is supported (GNU parallel's combinations of several are not)", ":::")
			}
		}
		switch {
		case marker == ":::" && len(after) == 0:
			return nil, nil, usagef("run: ::: with no arguments after it")
		case marker == ":::":
			cl.args, cl.file, cl.list = after, "", true
		case len(after) != 1:
			return nil, nil, usagef("run: :::: takes one file (- for standard input), got %d", len(after))
		default:
			cl.file = after[0]
		}
	}
	return cfg, cl, nil
}

// runCommand is poold run.
func runCommand(start time.Time, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, cl, err := parseRun(args, stdout)
	if code, done := preamble(cfg, err, "poold run -h", stdout, stderr); done {
		return code
	}
	j, err := cl.job(cfg, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "poold: run: %v\n", err)
		return exitUsage
	}
	if cfg.dryRun {
		return dryRun(j.src, stdout, stderr)
	}
	if j.tf != nil && len(cfg.hosts) == 0 {
		cfg.workers = min(cfg.workers, max(1, j.tf.Results))
	}
	return checkAndExecute(cfg, j, start, stdout, stderr)
}

// job makes the arguments a source of exec entries: from the list after
// :::, or streamed from a file or standard input, one argument a line.
func (cl *cmdLine) job(cfg *config, stdin io.Reader) (*job, error) {
	if cl.list {
		entries := make([]*Entry, len(cl.args))
		for i, a := range cl.args {
			entries[i] = cl.entry(cfg, i, a)
		}
		return &job{src: sliceSource(entries), tf: newTaskFile(entries), window: cfg.window}, nil
	}
	lr, name, closer, err := openLines(cl.file, stdin, "the arguments")
	if err != nil {
		return nil, err
	}
	src := lineSource(lr, closer, func(lineNo int, line []byte, tooLong bool) *Entry {
		i := lineNo - 1
		if tooLong {
			e := badEntry(i, lineNo, nil, fmt.Sprintf("line %d: the argument is longer than the limit of %s", lineNo, sizeString(lr.max)))
			e.ID, e.Func = strconv.Itoa(lineNo), "exec"
			return e
		}
		return cl.entry(cfg, i, string(line))
	})
	return &job{src: src, stream: name, window: streamWindow(cfg)}, nil
}

// entry is the exec task of argument arg, the i-th (0-based).
func (cl *cmdLine) entry(cfg *config, i int, arg string) *Entry {
	seq := strconv.Itoa(i + 1)
	return &Entry{
		Pos: i, Line: i + 1, ID: seq, Func: "exec", First: i,
		Args: map[string]any{"argv": commandArgv(cl.words, arg, seq, cfg.shell)},
	}
}

// commandArgv is the argv that runs words for one argument: its
// replacement strings replaced, or the argument appended when it has none.
// With shell, the words make one sh -c string in which every value put in
// is quoted for sh.
func commandArgv(words []string, arg, seq string, shell bool) []string {
	quote := func(s string) string { return s }
	if shell {
		quote = shellQuote
	}
	base := arg[strings.LastIndex(arg, "/")+1:]
	r := strings.NewReplacer(
		"{}", quote(arg),
		"{#}", quote(seq),
		"{.}", quote(noExt(arg)),
		"{/}", quote(base),
		"{//}", quote(dirname(arg)),
		"{/.}", quote(noExt(base)),
	)
	out := make([]string, 0, len(words)+1)
	replaced := false
	for _, w := range words {
		nw := r.Replace(w)
		if nw != w || hasReplacement(w) {
			replaced = true
		}
		out = append(out, nw)
	}
	if !replaced {
		out = append(out, quote(arg))
	}
	if shell {
		return []string{"sh", "-c", strings.Join(out, " ")}
	}
	return out
}

func hasReplacement(w string) bool {
	for _, r := range replacements {
		if strings.Contains(w, r) {
			return true
		}
	}
	return false
}

// noExt is s without its extension, as GNU parallel's {.}: the last "." and
// what follows, if no "/" follows it.
func noExt(s string) string {
	i := strings.LastIndex(s, ".")
	if i < 0 || strings.Contains(s[i:], "/") {
		return s
	}
	return s[:i]
}

// dirname is Perl's File::Basename dirname, as GNU parallel's {//}:
// trailing slashes do not count ("/a/b/" → "/a"), and a name without a
// slash is in ".".
func dirname(s string) string {
	t := strings.TrimRight(s, "/")
	if t == "" {
		if strings.HasPrefix(s, "/") {
			return "/"
		}
		return "."
	}
	i := strings.LastIndex(t, "/")
	if i < 0 {
		return "."
	}
	if d := strings.TrimRight(t[:i], "/"); d != "" {
		return d
	}
	return "/"
}

// shellQuote quotes s for sh: in single quotes, each single quote written
// as the four bytes quote, backslash, quote, quote.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// dryEntry is a task as a JSON Lines task-file entry, keys in this order.
type dryEntry struct {
	ID   string `json:"id"`
	Func string `json:"func"`
	Args any    `json:"args"`
}

// dryRun prints the entries of src as JSON Lines task-file entries.
func dryRun(src *source, stdout, stderr io.Writer) int {
	defer src.Stop()
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	status := exitOK
	for e := range src.Entries() {
		if e.Bad != "" {
			fmt.Fprintf(stderr, "poold: run: %s\n", e.Bad)
			status = exitFailed
			continue
		}
		if err := enc.Encode(dryEntry{ID: e.ID, Func: e.Func, Args: e.Args}); err != nil {
			fmt.Fprintf(stderr, "poold: run: %v\n", err)
			return exitFailed
		}
	}
	if err := src.Err(); err != nil {
		fmt.Fprintf(stderr, "poold: run: reading the arguments stopped early: %v\n", err)
		return exitFailed
	}
	return status
}

func printRunUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `usage: poold run [flags] -- COMMAND ARG... ::: A B C
       poold run [flags] -- COMMAND ARG... :::: FILE
       poold run [flags] -- COMMAND ARG...          (arguments on stdin)

Runs COMMAND once per argument on a pool of worker processes, as GNU
parallel does: the arguments follow :::, or are the lines of FILE after ::::
(- for standard input), or else of standard input, one per line, read as the
tasks run. Each one is a built-in exec task whose id is its sequence number
(1, 2, ...); results, output and exit status are those of 'poold -h'.

Replacement strings in COMMAND:
  {}     the argument          {/}    its basename
  {#}    the sequence number   {//}   its dirname
  {.}    without extension     {/.}   basename without extension
With none of them in COMMAND, the argument is appended as a last word. No
shell runs unless --shell: then COMMAND is one sh -c string in which every
replaced value is single-quoted for sh.

  seq 100 | poold run -n 4 -- sh -c 'echo {}; sleep 1'
  poold run -- gzip -k ::: a.txt b.txt
  poold run --shell -- 'wc -l {} > {.}.count' :::: files.txt
  poold run --dry-run -- convert {} {.}.png ::: a.jpg b.jpg

Flags (one or two dashes both work):
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}
