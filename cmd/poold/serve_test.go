package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseControl(t *testing.T) {
	for _, tc := range []struct {
		line      string
		isControl bool
		op, id    string
		bad       string
	}{
		{`{"id":"a","func":"echo","args":{"value":"control"}}`, false, "", "", ""},
		{`{"control":"stats"}`, true, "stats", "", ""},
		{`{"control":"cancel","id":"t7"}`, true, "cancel", "t7", ""},
		{`{"control":"cancel"}`, true, "cancel", "", "needs the \"id\""},
		{`{"control":"cancel","id":7}`, true, "cancel", "", "non-empty string"},
		{`{"control":"stop"}`, true, "stop", "", `must be "cancel" or "stats"`},
		{`{"control":"stats","id":"x"}`, true, "stats", "", `no field "id"`},
		{`{"control":"cancel","id":"x","func":"echo"}`, true, "cancel", "x", `no field "func"`},
		{`{"control": broken`, false, "", "", ""}, // not JSON: a bad task line
	} {
		c, isControl, msg := parseControl([]byte(tc.line))
		switch {
		case isControl != tc.isControl:
			t.Errorf("%s: control %v, want %v", tc.line, isControl, tc.isControl)
		case !isControl:
		case tc.bad == "" && (msg != "" || c.Op != tc.op || c.ID != tc.id):
			t.Errorf("%s: %+v, %q", tc.line, c, msg)
		case tc.bad != "" && !strings.Contains(msg, tc.bad):
			t.Errorf("%s: %q, want it to say %q", tc.line, msg, tc.bad)
		}
	}
}

// TestServeUsage: serve takes no task file, and its help says what it
// reads.
func TestServeUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"serve", "tasks.json"}, strings.NewReader(""), &out, &errOut); code != exitUsage ||
		!strings.Contains(errOut.String(), "serve reads its tasks from standard input") {
		t.Errorf("serve tasks.json: %d, %s", code, errOut.String())
	}
	out.Reset()
	if code := run([]string{"serve", "-h"}, strings.NewReader(""), &out, &errOut); code != exitOK || !strings.Contains(out.String(), `{"control": "cancel", "id": "ID"}`) {
		t.Errorf("serve -h: %d, %s", code, out.String())
	}
}
