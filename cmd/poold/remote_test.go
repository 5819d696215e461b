package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/poold/poold/internal/remote"
)

// TestRemoteFlags: --ssh, --ssh-file, --ssh-command and $POOLD_SSH,
// --remote-poold, and the mistakes each refuses before anything starts.
func TestRemoteFlags(t *testing.T) {
	t.Setenv(sshEnv, "ssh -F '/etc/my cluster'")
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("# more\n4/nodeC\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseFlags([]string{"--ssh", "2/nodeA,nodeB", "--ssh", ":", "--ssh-file", hosts, "--remote-poold", "/opt/poold", "t.json"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantHosts := []remote.Host{{Name: "nodeA", Workers: 2}, {Name: "nodeB"}, {Name: ":"}, {Name: "nodeC", Workers: 4}}
	if !reflect.DeepEqual(cfg.hosts, wantHosts) || !reflect.DeepEqual(cfg.sshCommand, []string{"ssh", "-F", "/etc/my cluster"}) ||
		!reflect.DeepEqual(cfg.remoteWorker, []string{"/opt/poold", "worker"}) {
		t.Errorf("hosts %v, ssh %q, worker %q", cfg.hosts, cfg.sshCommand, cfg.remoteWorker)
	}
	// -n is the count of the hosts given without one; --ssh-command wins
	// over $POOLD_SSH.
	cfg, err = parseFlags([]string{"-n", "3", "--ssh", "nodeA,1/nodeB", "--ssh-command", "ssh -p 2222", "t.json"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.hosts, []remote.Host{{Name: "nodeA", Workers: 3}, {Name: "nodeB", Workers: 1}}) || cfg.sshCommand[2] != "2222" {
		t.Errorf("hosts %v, ssh %q", cfg.hosts, cfg.sshCommand)
	}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--ssh", "0/nodeA"}, "--ssh: host \"0/nodeA\""},
		{[]string{"--ssh", "nodeA,nodeA"}, "given twice"},
		{[]string{"--ssh", "nodeA", "--ssh-command", `ssh "-F`}, "--ssh-command"},
		{[]string{"--ssh-command", "ssh"}, "without --ssh"},
		{[]string{"--ssh", "nodeA", "--mode", "threads"}, "cannot go with --mode threads"},
		{[]string{"--ssh", "nodeA", "--worker-cmd", "srun poold worker"}, "give one"},
		{[]string{"--ssh-file", "/no/such/hosts"}, "--ssh-file"},
		{[]string{"--worker-cmd", `poold "worker`}, "--worker-cmd"},
	} {
		_, err := parseFlags(append(tc.args, "t.json"), nil)
		if _, ok := err.(*usageError); !ok || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%q: %v, want a usage error saying %q", tc.args, err, tc.says)
		}
	}
}
