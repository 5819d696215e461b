package timeline

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"testing"
)

// pageData renders trace and returns the page and the data it embeds.
func pageData(t *testing.T, trace []byte, title string) (string, *page) {
	t.Helper()
	var out bytes.Buffer
	if err := Render(bytes.NewReader(trace), &out, title); err != nil {
		t.Fatalf("Render: %v", err)
	}
	html := out.String()
	m := regexp.MustCompile(`(?s)<script type="application/json" id="timeline-data">(.*?)</script>`).FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no data script in the page")
	}
	var p page
	if err := json.Unmarshal([]byte(m[1]), &p); err != nil {
		t.Fatalf("the page's data: %v", err)
	}
	return html, &p
}

func TestReadEventsLenient(t *testing.T) {
	const ev1 = `{"ph":"X","name":"a","ts":1,"dur":2,"pid":1,"tid":7}`
	const ev2 = `{"ph":"X","name":"b","ts":5,"dur":2,"pid":1,"tid":7}`
	for _, tc := range []struct {
		name, in string
		want     int
	}{
		{"closed", `{"displayTimeUnit":"ms","traceEvents":[` + ev1 + `,` + ev2 + `]}`, 2},
		{"events first", `{"traceEvents":[` + ev1 + `,` + ev2 + `],"displayTimeUnit":"ms"}`, 2},
		{"no closing", `{"displayTimeUnit":"ms","traceEvents":[` + ev1 + `,` + ev2, 2},
		{"trailing comma", `{"displayTimeUnit":"ms","traceEvents":[` + ev1 + `,` + ev2 + ",\n", 2},
		{"trailing comma closed", `{"traceEvents":[` + ev1 + `,` + ev2 + `,]}`, 2},
		{"last event cut", `{"traceEvents":[` + ev1 + `,` + ev2 + `,{"ph":"X","na`, 2},
		{"no closing brace", `{"traceEvents":[` + ev1 + `]`, 1},
		{"array form", `[` + ev1 + `,` + ev2 + `,`, 2},
		{"empty", `{"displayTimeUnit":"ms","traceEvents":[`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := readEvents([]byte(tc.in))
			if err != nil {
				t.Fatalf("readEvents: %v", err)
			}
			if len(evs) != tc.want {
				t.Fatalf("%d events, want %d", len(evs), tc.want)
			}
		})
	}
}

func TestRenderRejects(t *testing.T) {
	for _, in := range []string{``, `   `, `hello`, `{"displayTimeUnit":"ms"}`, `{"traceEvents":[{"ph":"X"} {"ph":"X"}]}`, `{"traceEvents":{}}`} {
		if err := Render(strings.NewReader(in), &bytes.Buffer{}, "x"); err == nil {
			t.Errorf("Render(%q): no error", in)
		}
	}
}

func TestRenderCrashRun(t *testing.T) {
	s := crashRun()
	trace, crashTrack := s.trace()
	html, p := pageData(t, trace, "crash run")

	if got := len(p.Bars.Ts); got != 20 {
		t.Errorf("%d bars, want 20", got)
	}
	// 4 workers and the one that replaced the dead one, in the order they
	// started; the dead one keeps its own row.
	var names []string
	for _, tr := range p.Tracks {
		names = append(names, tr.Name)
	}
	want := []string{"worker 1 (pid 1001)", "worker 2 (pid 1002)", "worker 3 (pid 1003)", "worker 4 (pid 1004)", "worker 4 (pid 1005)"}
	if strings.Join(names, "|") != strings.Join(want, "|") || crashTrack != want[3] {
		t.Errorf("tracks %q (crash on %q), want %q", names, crashTrack, want)
	}
	deaths, replaced := 0, 0
	for _, m := range p.Marks {
		switch m.Name {
		case "worker death":
			deaths++
			if p.Tracks[m.Track].Name != crashTrack {
				t.Errorf("death on %q, want %q", p.Tracks[m.Track].Name, crashTrack)
			}
		case "worker replaced":
			replaced++
		}
	}
	if deaths != 1 || replaced != 1 {
		t.Errorf("%d deaths, %d replacements, want 1 and 1", deaths, replaced)
	}
	lost := -1
	for i := range p.Bars.Ts {
		if p.Kinds[p.Bars.Kind[i]] == "worker_lost" {
			lost = i
		}
		if i > 0 && p.Bars.Track[i] == p.Bars.Track[i-1] && p.Bars.Ts[i] < p.Bars.Ts[i-1] {
			t.Errorf("bars %d, %d: not sorted by start", i-1, i)
		}
	}
	if lost < 0 || p.Bars.ID[lost] != "t07" || p.Funcs[p.Bars.Func[lost]] != "square" || p.Bars.Pid[lost] != 1004 || p.Bars.Attempts[lost] != 1 {
		t.Fatalf("crashed run: index %d, %+v", lost, p.Bars)
	}
	if !strings.Contains(string(p.Bars.Extra[lost]["error"]), "signal: killed") {
		t.Errorf("crashed run's error: %s", p.Bars.Extra[lost]["error"])
	}
	if len(p.Kinds) != 2 || p.Kinds[0] != "" {
		t.Errorf("kinds %q, want ok and worker_lost", p.Kinds)
	}

	// Self-contained: nothing fetched from anywhere.
	for _, bad := range []string{"http://", "https://", "<link", " src=", "@import", "url("} {
		if strings.Contains(html, bad) {
			t.Errorf("the page contains %q", bad)
		}
	}
	if n := strings.Count(html, "<script"); n != 2 {
		t.Errorf("%d script elements, want 2 (data, code)", n)
	}
}

func TestRenderEscapes(t *testing.T) {
	trace := `{"traceEvents":[{"ph":"X","name":"</script><b>x","ts":0,"dur":5,"pid":1,"tid":3,"args":{"func":"<!--"}}]}`
	html, p := pageData(t, []byte(trace), `a </title><script>alert(1)</script> & b`)
	if p.Bars.ID[0] != "</script><b>x" || p.Funcs[0] != "<!--" || p.Title != `a </title><script>alert(1)</script> & b` {
		t.Errorf("data did not round-trip: %+v", p)
	}
	if strings.Count(html, "</script>") != 2 || strings.Contains(html, "<b>") || strings.Contains(html, "<!--") {
		t.Errorf("title or data not escaped:\n%s", html[:min(len(html), 2000)])
	}
	if !strings.Contains(html, "<title>a &lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; b</title>") {
		t.Errorf("title not escaped in <title>")
	}
}

// TestScriptSmall keeps the embedded script the project's own, small and
// free of network access.
func TestScriptSmall(t *testing.T) {
	if len(script) > 32<<10 {
		t.Errorf("timeline.js is %d bytes; keep it under 32 KiB", len(script))
	}
	for _, bad := range []string{"fetch(", "XMLHttpRequest", "import(", "WebSocket", "</script"} {
		if strings.Contains(script, bad) {
			t.Errorf("timeline.js contains %q", bad)
		}
	}
}

// BenchmarkRender100k renders the page of 100,000 task runs (a 13 MB trace).
func BenchmarkRender100k(b *testing.B) {
	trace, _ := synth{tasks: 100000, workers: 8, crash: 50000, failEvery: 997, dur: func(i int) float64 { return float64(500 + (i*7919)%3000) }}.trace()
	b.SetBytes(int64(len(trace)))
	for b.Loop() {
		if err := Render(bytes.NewReader(trace), io.Discard, "100,000 tasks"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestQuickArgs checks the fast path of a run's args against encoding/json,
// and that it gives up on what it does not read.
func TestQuickArgs(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"func":"sleep","attempts":1,"pid":1234}`, true},
		{`{"func":"sleep","attempts":2,"kind":"worker_lost","pid":1234}`, true},
		{` { "kind" : "" , "pid" : 7 , "func" : "a b" } `, true},
		{`{}`, true},
		{`{"func":"sl\"eep","pid":1}`, false},
		{`{"func":"sleep","error":"boom"}`, false},
		{`{"func":3}`, false},
		{`{"pid":"7"}`, false},
		{`{"pid":1e3}`, true},
		{`null`, false},
		{``, false},
		{`{"func":"x"`, false},
	} {
		var got, want runArgs
		ok := quickArgs([]byte(tc.in), &got)
		if ok != tc.ok {
			t.Errorf("quickArgs(%s) = %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		if ok {
			if err := json.Unmarshal([]byte(tc.in), &want); err != nil || got != want {
				t.Errorf("quickArgs(%s) = %+v, encoding/json %+v (%v)", tc.in, got, want, err)
			}
		}
	}
}

// TestRenderScopesAndProcesses: an instant event of process or global
// scope marks every row; tracks of more than one host are named by host.
func TestRenderScopesAndProcesses(t *testing.T) {
	trace := `{"traceEvents":[
{"ph":"M","name":"process_name","pid":1,"args":{"name":"here"}},
{"ph":"M","name":"process_name","pid":2,"args":{"name":"there"}},
{"ph":"M","name":"thread_name","pid":2,"tid":9,"args":{"name":"w9"}},
{"ph":"X","name":"a","ts":10,"dur":5,"pid":2,"tid":9,"args":{"func":"f","attempts":1,"kind":"timeout","pid":9,"max_rss":1024}},
{"ph":"X","name":"b","ts":0,"dur":5,"pid":1,"tid":3},
{"ph":"i","s":"g","name":"halt","ts":12,"pid":1,"tid":0,"args":{"reason":"fail=1"}},
{"ph":"i","name":"worker death","ts":15,"pid":2,"tid":9},
`
	_, p := pageData(t, []byte(trace), "two hosts")
	if len(p.Tracks) != 2 || p.Tracks[0].Name != "here · tid 3" || p.Tracks[1].Name != "there · w9" {
		t.Errorf("tracks %+v", p.Tracks)
	}
	if len(p.Marks) != 2 || p.Marks[0].Track != -1 || p.Marks[1].Track != 1 {
		t.Errorf("marks %+v", p.Marks)
	}
	if a := p.Bars.Extra[1]; string(a["max_rss"]) != "1024" || len(a) != 1 {
		t.Errorf("extra args of run a: %v", p.Bars.Extra)
	}
	if p.End != 15 {
		t.Errorf("end %v, want 15", p.End)
	}
}
