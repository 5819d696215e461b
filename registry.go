package poold

import (
	"os"

	"context"

	"github.com/poold/poold/internal/tasks"
	"github.com/poold/poold/internal/worker"
)

// Registry holds the task functions a worker can run, by name. Build it the
// same way in every process of the program (typically in package-level vars
// or at the top of main, before [Init]), so that parent and workers agree.
type Registry struct {
	r *tasks.Registry
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{r: tasks.NewRegistry()} }

// Names returns the registered task names, sorted.
func (r *Registry) Names() []string { return r.r.Names() }

// RegisterBuiltins adds the built-in tasks of the poold command (sleep, pow,
// echo, primes, pi, sha256, exec, print, crash) to reg.
func RegisterBuiltins(reg *Registry) { tasks.RegisterBuiltins(reg.r) }

// Register adds fn to reg under name and returns a typed handle to call it
// through a pool. Arguments and results travel as msgpack; struct fields are
// named by their msgpack tag, else their json tag, else the field name.
// Registering a name twice panics.
func Register[A, R any](reg *Registry, name string, fn func(context.Context, A) (R, error)) Func[A, R] {
	reg.r.Register(name, tasks.Typed(fn))
	return Func[A, R]{name: name}
}

// Init is the worker entry hook: call it at the top of main, after the
// registry is built. In a process that a pool started as a worker, Init
// serves tasks from reg and exits the process when the pool is done with it;
// in any other process it returns at once.
func Init(reg *Registry) {
	if worker.IsWorker() {
		os.Exit(worker.Serve(reg.r))
	}
}

// IsWorker reports whether this process was started by a pool as a worker.
func IsWorker() bool { return worker.IsWorker() }
