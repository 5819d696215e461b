package integration_test

import (
	"testing"

	"github.com/poold/poold/internal/conformance"
)

// TestConformance runs the conformance test of docs/protocol.md against
// every worker program this repository has: the built poold (`poold
// worker`), the standalone worker started by a command line (`worker
// worker`) and by a pool's environment (POOLD_WORKER, the env-marker
// mode), and the Python worker of examples/python.
func TestConformance(t *testing.T) {
	t.Parallel()
	// A Go worker's call that fails with kind error: hashing a file that
	// does not exist.
	goFail := conformance.Call{Func: "sha256", Args: map[string]any{"path": "/nonexistent/poold-conformance"}, Kind: "error", Type: "*fs.PathError"}
	workers := []struct {
		name string
		w    func(t *testing.T) conformance.Worker
	}{
		{"poold worker", func(*testing.T) conformance.Worker {
			return conformance.Worker{Argv: []string{pooldBin, "worker"}, Fail: goFail}
		}},
		{"cmd/worker worker", func(*testing.T) conformance.Worker {
			return conformance.Worker{Argv: []string{workerBin, "worker"}, Fail: goFail}
		}},
		{"cmd/worker env-marker", func(*testing.T) conformance.Worker {
			return conformance.Worker{Argv: []string{workerBin}, Env: []string{"POOLD_WORKER=5"}, Fail: goFail}
		}},
		{"python", func(t *testing.T) conformance.Worker {
			return conformance.Worker{Argv: pyWorker(t),
				Fail: conformance.Call{Func: "fail", Args: map[string]any{"message": "boom"}, Kind: "error", Type: "ValueError"}}
		}},
	}
	for _, x := range workers {
		t.Run(x.name, func(t *testing.T) {
			t.Parallel()
			w := x.w(t)
			w.Env = append(w.Env, tagVar+"="+newTag(t), debugEnv)
			conformance.Run(t, w)
		})
	}
}
