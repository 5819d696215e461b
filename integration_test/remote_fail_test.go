package integration_test

import (
	"strings"
	"testing"
	"time"

	"github.com/poold/poold/internal/sshtest"
)

// TestSSHStartFailures: a wrong remote path, a refused connection and an
// unknown host key each end poold within the connection's timeout and 2 s,
// with exit status 1 and a message that says what went wrong, never a
// prompt or a hang.
func TestSSHStartFailures(t *testing.T) {
	t.Parallel()
	c := sshtest.Hosts(t, "hostA")
	file := writeTasks(t, []task{echoTask("e", 1)})
	for _, tc := range []struct {
		name string
		args []string
		says []string
	}{
		{"wrong remote path", []string{"--ssh", "2/hostA", "--ssh-command", strings.Join(c.SSH(), " "), "--remote-poold", "/no/such/poold"},
			[]string{"hostA", "/no/such/poold", "did not start", "no such program"}},
		{"refused", []string{"--ssh", "2/" + sshtest.Closed, "--ssh-command", strings.Join(c.SSH(), " "), "--remote-poold", pooldBin},
			[]string{sshtest.Closed, "Connection refused"}},
		{"unknown host key", []string{"--ssh", "2/hostA", "--ssh-command", "ssh -F " + c.ConfigWithoutHostKeys(), "--remote-poold", pooldBin},
			[]string{"hostA", "Host key verification failed"}},
		{"no count, refused", []string{"--ssh", sshtest.Closed, "--ssh-command", strings.Join(c.SSH(), " "), "--remote-poold", pooldBin},
			[]string{sshtest.Closed, "Connection refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// ConnectTimeout is 5 s in the generated ssh_config.
			r := runPoold(t, runOpts{timeout: 30 * time.Second, stdin: ""}, append(tc.args, file)...)
			if r.Code != 1 {
				t.Errorf("exit %d, want 1; stderr:\n%s", r.Code, r.Stderr)
			}
			if r.Wall > 7*time.Second {
				t.Errorf("took %v, want within ConnectTimeout (5 s) + 2 s", r.Wall)
			}
			for _, w := range tc.says {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, r.Stderr)
				}
			}
			t.Logf("%v:\n%s", r.Wall.Round(time.Millisecond), r.Stderr)
		})
	}
}
