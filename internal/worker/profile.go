package worker

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"

	"github.com/hashicorp/go-hclog"
)

// profileCPU writes this worker's CPU profile to dir/worker-PID.pprof until
// the returned function is called: workers are separate processes, so a
// profile of the parent does not show them.
func profileCPU(dir string, log hclog.Logger) func() {
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("worker-%d.pprof", os.Getpid())))
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		log.Warn("cannot profile", "error", err.Error())
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}
