package pool

import "testing"

// Every move of the worker state table is legal or refused as documented,
// and setStateLocked panics on an illegal one.
func TestWorkerStateMoves(t *testing.T) {
	t.Parallel()
	legal := map[[2]workerState]bool{
		{starting, ready}: true, {starting, exited}: true,
		{ready, draining}: true, {ready, exited}: true,
		{draining, exited}: true,
	}
	all := []workerState{starting, ready, draining, exited}
	for _, from := range all {
		for _, to := range all {
			if got, want := legalMove(from, to), legal[[2]workerState{from, to}]; got != want {
				t.Errorf("%s → %s: legal %v, want %v", from, to, got, want)
			}
			if legal[[2]workerState{from, to}] {
				continue
			}
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s → %s did not panic", from, to)
					}
				}()
				p := &Pool{}
				p.setStateLocked(&worker{p: p, state: from}, to)
			}()
		}
	}
}
