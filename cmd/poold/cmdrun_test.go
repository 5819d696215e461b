package main

import (
	"slices"
	"testing"
)

func TestCommandArgv(t *testing.T) {
	for _, c := range []struct {
		words []string
		arg   string
		shell bool
		want  []string
	}{
		{[]string{"echo", "{}"}, "a b", false, []string{"echo", "a b"}},
		{[]string{"echo"}, "a b", false, []string{"echo", "a b"}},
		{[]string{"cp", "{}", "{.}.bak{#}"}, "d/f.txt", false, []string{"cp", "d/f.txt", "d/f.bak7"}},
		{[]string{"echo", "{/}", "{//}", "{/.}"}, "d.x/f.tar.gz", false, []string{"echo", "f.tar.gz", "d.x", "f.tar"}},
		// A replacement string inside the argument is not replaced again.
		{[]string{"echo", "{}"}, "{#}", false, []string{"echo", "{#}"}},
		{[]string{"echo {}"}, "it's $(x)", true, []string{"sh", "-c", `echo 'it'\''s $(x)'`}},
		{[]string{"echo"}, "a", true, []string{"sh", "-c", "echo 'a'"}},
	} {
		if got := commandArgv(c.words, c.arg, "7", c.shell); !slices.Equal(got, c.want) {
			t.Errorf("commandArgv(%q, %q, shell %v) = %q, want %q", c.words, c.arg, c.shell, got, c.want)
		}
	}
}

func TestNoExtDirname(t *testing.T) {
	// GNU parallel 20221122's {.} and {//}.
	for _, c := range []struct{ in, noExt, dir string }{
		{"a/b.c", "a/b", "a"},
		{"x/y.tar.gz", "x/y.tar", "x"},
		{"noslash", "noslash", "."},
		{"file.", "file", "."},
		{"d.x/file", "d.x/file", "d.x"},
		{"/a/b/", "/a/b/", "/a"},
		{"/f", "/f", "/"},
		{"/", "/", "/"},
		{"", "", "."},
	} {
		if got := noExt(c.in); got != c.noExt {
			t.Errorf("noExt(%q) = %q, want %q", c.in, got, c.noExt)
		}
		if got := dirname(c.in); got != c.dir {
			t.Errorf("dirname(%q) = %q, want %q", c.in, got, c.dir)
		}
	}
}
