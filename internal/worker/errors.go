package worker

import (
	"errors"
	"fmt"

	"github.com/poold/poold/internal/kind"
	"github.com/poold/poold/internal/tasks"
)

// registerHint says why a worker may not know a task its parent knows.
const registerHint = "a worker knows the tasks registered before poold.Init runs: register them in package-level vars or at the top of main, before Init"

// panicError is a recovered panic; its type is the panic value's.
type panicError struct{ value any }

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// errorType names the Go type of err as a caller would want to test it:
// the first type in its chain that is not a plain wrapper
// (fmt.Errorf's, errors.Join's), so that an *fs.PathError wrapped with
// %w still reads *fs.PathError; for a panic, its value's type.
func errorType(err error) string {
	if p, ok := err.(*panicError); ok {
		return fmt.Sprintf("%T", p.value)
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch t := fmt.Sprintf("%T", e); t {
		case "*fmt.wrapError", "*fmt.wrapErrors", "*errors.joinError":
		default:
			return t
		}
	}
	return fmt.Sprintf("%T", err)
}

// errorKind is the kind a task's error asks for, and what it says beyond
// its message, encoded: an error in the chain with a Kind() string method
// chooses its kind ("exit_status" for a command that failed, say), and
// one with a Detail() any method gives the detail. Otherwise the kind is
// error, with no detail.
func errorKind(err error) (string, []byte) {
	k := string(kind.Error)
	var kinded interface{ Kind() string }
	if errors.As(err, &kinded) && kinded.Kind() != "" {
		k = kinded.Kind()
	}
	var detailed interface{ Detail() any }
	if errors.As(err, &detailed) {
		if b, err := tasks.Marshal(detailed.Detail()); err == nil {
			return k, b
		}
	}
	return k, nil
}
