package pool

import (
	"syscall"
	"testing"
)

// TestExitText: how a worker's end reads, local and behind a launcher.
func TestExitText(t *testing.T) {
	for _, tc := range []struct {
		exit Exit
		want string
	}{
		{Exit{PID: 7, ExitCode: 3}, "worker pid 7 exited with code 3"},
		{Exit{PID: 7, ExitCode: -1, Signal: syscall.SIGSEGV, CoreDump: true, Stderr: []string{"x", "panic: boom", "y"}},
			"worker pid 7 killed by signal 11 (segmentation fault), core dumped; stderr: panic: boom"},
		{Exit{PID: 9, Host: "hostA", Launcher: "ssh", LauncherPID: 5, ExitCode: 255},
			"worker pid 9 on hostA lost: ssh (pid 5) exited with 255: the connection failed, or the worker was killed by a signal"},
		{Exit{PID: 9, Host: "hostA", Launcher: "ssh", LauncherPID: 5, ExitCode: -1, Signal: syscall.SIGKILL},
			"worker pid 9 on hostA lost: its ssh (pid 5) was killed by signal 9 (killed)"},
		{Exit{PID: 9, Host: "hostA", Launcher: "ssh", LauncherPID: 5, ExitCode: 2, Stderr: []string{"fatal error: x"}},
			"worker pid 9 on hostA exited with code 2 as its ssh (pid 5) reported; stderr: fatal error: x"},
		{Exit{PID: 9, Launcher: "srun", LauncherPID: 5, ExitCode: 137},
			"worker pid 9 exited with code 137, 128 + signal 9 (killed), as its srun (pid 5) reported"},
		{Exit{Host: "hostB", Launcher: "ssh", LauncherPID: 5, ExitCode: 255, Stderr: []string{"Host key verification failed."}},
			"worker on hostB did not start: its ssh (pid 5) exited with code 255 (ssh could not connect or log in); stderr: Host key verification failed."},
		{Exit{Host: "hostB", Launcher: "ssh", LauncherPID: 5, ExitCode: 127},
			"worker on hostB did not start: its ssh (pid 5) exited with code 127 (no such program where it ran: check the worker's path)"},
		{Exit{PID: 9, Host: "hostA", Launcher: "ssh", LauncherPID: 5, ExitCode: 255, Reason: "killed: resident memory reached 300.0 MiB, over the limit of 256.0 MiB"},
			"worker pid 9 on hostA lost: ssh (pid 5) exited with 255: the connection failed, or the worker was killed by a signal [killed: resident memory reached 300.0 MiB, over the limit of 256.0 MiB]"},
	} {
		if got := tc.exit.Error(); got != tc.want {
			t.Errorf("%+v:\n got %s\nwant %s", tc.exit, got, tc.want)
		}
	}
}
