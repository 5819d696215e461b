package tasks

import (
	"reflect"
	"strings"
)

// TaskDoc describes a built-in task for people: `poold help tasks` prints
// it, and the README holds a copy. The arguments are described by their
// struct's fields: the name is the msgpack one (see [structTag]), the type
// follows from the Go type unless a `type` tag says otherwise, the default
// is the `default` tag (else the zero value), and the `doc` tag says what
// the field means.
type TaskDoc struct {
	Name    string
	Summary string       // what the task is for
	Args    reflect.Type // the argument struct
	Result  string       // what it returns, and how it fails when that matters
}

// FieldDoc describes one argument of a task.
type FieldDoc struct {
	Name    string
	Type    string // "integer", "array of strings", ...
	Default string // "0", `""`, "required", ...
	Doc     string
}

// Builtins describes the built-in tasks, sorted by name.
func Builtins() []TaskDoc {
	tasks := builtinTasks()
	docs := make([]TaskDoc, len(tasks))
	for i, b := range tasks {
		docs[i] = b.doc
	}
	return docs
}

// Fields describes the task's arguments, in the order of its struct.
func (d TaskDoc) Fields() []FieldDoc {
	names, index := argFields(d.Args, nil)
	out := make([]FieldDoc, len(names))
	for i, name := range names {
		f := d.Args.FieldByIndex(index[name])
		fd := FieldDoc{Name: name, Type: f.Tag.Get("type"), Default: f.Tag.Get("default"), Doc: f.Tag.Get("doc")}
		if fd.Type == "" {
			fd.Type = typeName(f.Type)
		}
		if fd.Default == "" {
			fd.Default = zeroValue(f.Type)
		}
		out[i] = fd
	}
	return out
}

// typeName names the JSON values that decode into a t.
func typeName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8 {
		return "array of " + typeName(t.Elem()) + "s"
	}
	_, name, _ := strings.Cut(wantOf(t), " ") // "an integer": "integer"
	return name
}

// zeroValue is the JSON of what a field left out holds: its Go zero value.
func zeroValue(t reflect.Type) string {
	switch k := t.Kind(); {
	case k == reflect.String:
		return `""`
	case k == reflect.Bool:
		return "false"
	case isInteger(k) || k == reflect.Float32 || k == reflect.Float64:
		return "0"
	}
	return "null"
}
