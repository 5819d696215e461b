package remote

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseHosts(t *testing.T) {
	got, err := ParseHosts("2/hostA, hostB,:,4/:,user@h.example")
	if err != nil {
		t.Fatal(err)
	}
	want := []Host{{"hostA", 2}, {"hostB", 0}, {":", 0}, {":", 4}, {"user@h.example", 0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for list, says := range map[string]string{
		"":           "an empty host",
		"a,,b":       "an empty host",
		"0/a":        `"0" is not a number of workers`,
		"x/a":        `"x" is not a number of workers`,
		"-1/a":       "not a number of workers",
		"2/":         "names no host",
		"-oProxy=x":  "starts with -",
		"host a":     "space",
		"2/host/x":   "slash",
		"3/-p":       "starts with -",
		"2//host":    "slash",
		" , hostA ,": "an empty host",
	} {
		_, err := ParseHosts(list)
		if err == nil || !strings.Contains(err.Error(), says) || !strings.Contains(err.Error(), "[N/]host") {
			t.Errorf("ParseHosts(%q) = %v, want an error saying %q and what is accepted", list, err, says)
		}
	}
	if err := Check([]Host{{"a", 1}, {"b", 0}, {"a", 2}}); err == nil || !strings.Contains(err.Error(), `"a" is given twice`) {
		t.Errorf("Check of a host given twice: %v", err)
	}
}

func TestReadHosts(t *testing.T) {
	got, err := ReadHosts(strings.NewReader("# cluster\n\n2/hostA\n  hostB  \n# end\n"), "hosts.txt")
	if err != nil {
		t.Fatal(err)
	}
	if want := []Host{{"hostA", 2}, {"hostB", 0}}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := ReadHosts(strings.NewReader("hostA\n0/hostB\n"), "hosts.txt"); err == nil || !strings.HasPrefix(err.Error(), "hosts.txt:2: ") {
		t.Errorf("a bad second line: %v, want it named hosts.txt:2", err)
	}
	if _, err := ReadHosts(strings.NewReader("# nothing\n"), "hosts.txt"); err == nil || !strings.Contains(err.Error(), "no hosts") {
		t.Errorf("a file without hosts: %v", err)
	}
}

func TestSSHCommand(t *testing.T) {
	got := SSHCommand([]string{"ssh", "-F", "/tmp/my config", "-p", "2222"}, "hostA", []string{"/opt/my poold/poold", "worker"})
	want := []string{"ssh", "-T", "-o", "BatchMode=yes", "-F", "/tmp/my config", "-p", "2222", "hostA", `'/opt/my poold/poold' worker`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	argv, err := SplitCommand(`srun -N1 -n1 --input=all "/opt/my poold/poold" worker`, "--worker-cmd")
	if err != nil || !reflect.DeepEqual(argv, []string{"srun", "-N1", "-n1", "--input=all", "/opt/my poold/poold", "worker"}) {
		t.Errorf("SplitCommand: %q, %v", argv, err)
	}
	if _, err := SplitCommand(`ssh "-F`, "--ssh-command"); err == nil || !strings.Contains(err.Error(), "--ssh-command") {
		t.Errorf("an unterminated quote: %v", err)
	}
	if _, err := SplitCommand(`  `, "--ssh-command"); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty command line: %v", err)
	}
}
