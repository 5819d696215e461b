// Package timeline draws a Chrome trace-event file of a poold run as one
// self-contained HTML page: a Gantt chart on a canvas, a row per worker
// track, a bar per task run coloured by outcome, worker deaths and
// replacements marked, details of a run on hover or click, zoom and pan.
//
// The page needs no network: its script (timeline.js, embedded) and the data
// (JSON in a <script type="application/json"> tag) are in the file.
package timeline

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"
)

//go:embed timeline.js
var script string

//go:embed timeline.css
var style string

// page is the data the script draws, in columns (bars) so that 100,000 runs
// stay a few megabytes.
type page struct {
	Title  string   `json:"title"`
	Tracks []track  `json:"tracks"`
	Funcs  []string `json:"funcs"`
	Kinds  []string `json:"kinds"` // Kinds[0] is "": ok
	Bars   bars     `json:"bars"`
	Marks  []mark   `json:"marks"`
	End    float64  `json:"end"` // the last end of a run or mark, µs
}

type track struct {
	Name string `json:"name"`
	Pid  int64  `json:"pid"`
	Tid  int64  `json:"tid"`
}

// bars holds the task runs in columns, sorted by track, then start.
type bars struct {
	Track    []int     `json:"track"`
	Ts       []float64 `json:"ts"`
	Dur      []float64 `json:"dur"`
	ID       []string  `json:"id"`
	Func     []int     `json:"func"`
	Kind     []int     `json:"kind"`
	Attempts []int64   `json:"attempts"`
	Pid      []int64   `json:"pid"`
	// Extra holds the args other than func, attempts, kind and pid (an
	// error message, say), by bar index, for the runs that have any.
	Extra map[int]map[string]json.RawMessage `json:"extra"`
}

// mark is an instant event: a worker's start, death, replacement.
type mark struct {
	Track int                        `json:"track"` // -1: all tracks (process or global scope)
	Ts    float64                    `json:"ts"`
	Name  string                     `json:"name"`
	Args  map[string]json.RawMessage `json:"args,omitempty"`
}

type trackKey struct{ pid, tid int64 }

// build turns the events into the page's data.
func build(events []event, title string) *page {
	type tinfo struct {
		key     trackKey
		name    string
		sortIdx float64
		hasSort bool
		first   float64
	}
	procNames := map[int64]string{}
	tracks := map[trackKey]*tinfo{}
	get := func(k trackKey) *tinfo {
		t := tracks[k]
		if t == nil {
			t = &tinfo{key: k, first: math.Inf(1)}
			tracks[k] = t
		}
		return t
	}
	for i := range events {
		ev := &events[i]
		k := trackKey{ev.Pid, ev.Tid}
		switch ev.Ph {
		case "M":
			switch ev.Name {
			case "process_name":
				procNames[ev.Pid] = argString(argMap(ev.Args), "name")
			case "thread_name":
				get(k).name = argString(argMap(ev.Args), "name")
			case "thread_sort_index":
				t := get(k)
				if err := json.Unmarshal(argMap(ev.Args)["sort_index"], &t.sortIdx); err == nil {
					t.hasSort = true
				}
			}
		case "X", "i", "I":
			if ev.Ph != "X" && ev.S != "" && ev.S != "t" {
				continue
			}
			t := get(k)
			t.first = math.Min(t.first, ev.Ts)
		}
	}
	list := make([]*tinfo, 0, len(tracks))
	for _, t := range tracks {
		list = append(list, t)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.key.pid != b.key.pid {
			return a.key.pid < b.key.pid
		}
		if a.hasSort != b.hasSort {
			return a.hasSort
		}
		if a.sortIdx != b.sortIdx {
			return a.sortIdx < b.sortIdx
		}
		if a.first != b.first {
			return a.first < b.first
		}
		return a.key.tid < b.key.tid
	})
	multiProc := false
	for _, t := range list {
		if t.key.pid != list[0].key.pid {
			multiProc = true
		}
	}
	p := &page{Title: title, Kinds: []string{""}, Funcs: []string{}, Marks: []mark{}}
	index := map[trackKey]int{}
	for i, t := range list {
		index[t.key] = i
		name := t.name
		if name == "" {
			name = fmt.Sprintf("tid %d", t.key.tid)
		}
		if multiProc {
			pn := procNames[t.key.pid]
			if pn == "" {
				pn = fmt.Sprintf("pid %d", t.key.pid)
			}
			name = pn + " · " + name
		}
		p.Tracks = append(p.Tracks, track{Name: name, Pid: t.key.pid, Tid: t.key.tid})
	}
	if p.Tracks == nil {
		p.Tracks = []track{}
	}

	funcIdx := map[string]int{}
	kindIdx := map[string]int{"": 0}
	intern := func(m map[string]int, list *[]string, s string) int {
		i, ok := m[s]
		if !ok {
			i = len(*list)
			m[s] = i
			*list = append(*list, s)
		}
		return i
	}
	type run struct {
		track int
		ev    *event
	}
	var runs []run
	for i := range events {
		ev := &events[i]
		k := trackKey{ev.Pid, ev.Tid}
		switch ev.Ph {
		case "X":
			runs = append(runs, run{index[k], ev})
		case "i", "I":
			tr := -1
			if ev.S == "" || ev.S == "t" {
				tr = index[k]
			}
			p.Marks = append(p.Marks, mark{Track: tr, Ts: ev.Ts, Name: ev.Name, Args: argMap(ev.Args)})
			p.End = math.Max(p.End, ev.Ts)
		}
	}
	sort.SliceStable(runs, func(i, j int) bool {
		if runs[i].track != runs[j].track {
			return runs[i].track < runs[j].track
		}
		return runs[i].ev.Ts < runs[j].ev.Ts
	})
	sort.SliceStable(p.Marks, func(i, j int) bool { return p.Marks[i].Ts < p.Marks[j].Ts })
	b := &p.Bars
	n := len(runs)
	b.Track, b.Ts, b.Dur, b.ID = make([]int, n), make([]float64, n), make([]float64, n), make([]string, n)
	b.Func, b.Kind, b.Attempts, b.Pid = make([]int, n), make([]int, n), make([]int64, n), make([]int64, n)
	b.Extra = map[int]map[string]json.RawMessage{}
	for i, r := range runs {
		ev := r.ev
		dur := math.Max(ev.Dur, 0)
		b.Track[i], b.Ts[i], b.Dur[i], b.ID[i] = r.track, ev.Ts, dur, ev.Name
		var a runArgs
		quick := quickArgs(ev.Args, &a)
		if !quick {
			a = runArgs{}
			_ = json.Unmarshal(ev.Args, &a) // lenient: a field of another type stays zero
		}
		b.Func[i] = intern(funcIdx, &p.Funcs, a.Func)
		b.Kind[i] = intern(kindIdx, &p.Kinds, a.Kind)
		b.Attempts[i], b.Pid[i] = int64(a.Attempts), int64(a.Pid)
		p.End = math.Max(p.End, ev.Ts+dur)
		if quick {
			continue
		}
		for key, v := range argMap(ev.Args) {
			switch key {
			case "func", "attempts", "kind", "pid":
				continue
			}
			if b.Extra[i] == nil {
				b.Extra[i] = map[string]json.RawMessage{}
			}
			b.Extra[i][key] = v
		}
	}
	return p
}

func argString(args map[string]json.RawMessage, key string) string {
	var s string
	if err := json.Unmarshal(args[key], &s); err != nil {
		return ""
	}
	return s
}

// Render reads a Chrome trace-event file of a poold run from trace and
// writes to out one self-contained HTML page that draws it, titled title.
// The trace may lack its closing "]}" (a run killed halfway) or have a
// comma after its last event.
func Render(trace io.Reader, out io.Writer, title string) error {
	data, err := io.ReadAll(trace)
	if err != nil {
		return fmt.Errorf("timeline: reading the trace: %w", err)
	}
	events, err := readEvents(data)
	if err != nil {
		return err
	}
	// encoding/json escapes <, > and & (and U+2028, U+2029), so that the
	// data cannot end its <script> element early.
	js, err := json.Marshal(build(events, title))
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	var w bytes.Buffer
	t := html.EscapeString(title)
	w.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	w.WriteString("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	w.WriteString("<title>" + t + "</title>\n<style>\n" + style + "</style>\n</head>\n<body>\n")
	w.WriteString("<header><h1>" + t + "</h1><div id=\"summary\"></div><div id=\"legend\"></div>")
	w.WriteString("<div id=\"help\">wheel: zoom · drag: pan · shift+wheel: scroll rows · double-click: whole run · click a bar: pin its details</div></header>\n")
	w.WriteString("<div id=\"chart-wrap\"><canvas id=\"chart\"></canvas></div>\n")
	w.WriteString("<div id=\"details\">Hover over or click a bar for its details.</div>\n")
	w.WriteString("<script type=\"application/json\" id=\"timeline-data\">")
	w.Write(js)
	w.WriteString("</script>\n<script>\n")
	w.WriteString(strings.ReplaceAll(script, "</script", "<\\/script"))
	w.WriteString("</script>\n</body>\n</html>\n")
	_, err = out.Write(w.Bytes())
	return err
}
