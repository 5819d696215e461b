// Package remote is where workers on other machines are described: the
// host lists of --ssh and --ssh-file, and the ssh command line that starts
// a worker on a host. Starting and supervising them is the pool's (a
// worker on another machine is one more command line to it).
package remote

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/kballard/go-shellquote"
)

// Local is the host name that means this machine, as in GNU parallel's
// --sshlogin.
const Local = ":"

// Host is one entry of a host list: "[N/]host".
type Host struct {
	Name    string // as given (user@host, an ssh_config alias); Local for this machine
	Workers int    // N; 0: not given (ask the host for its CPU count)
}

// ParseHosts reads a comma-separated list of "[N/]host" entries. Every
// mistake is an error that names the entry and says what is accepted.
func ParseHosts(list string) ([]Host, error) {
	var hosts []Host
	for entry := range strings.SplitSeq(list, ",") {
		h, err := parseHost(strings.TrimSpace(entry))
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// ReadHosts reads a host file: one "[N/]host" a line; blank lines and
// those starting with # are skipped. name is the file's, for errors.
func ReadHosts(r io.Reader, name string) ([]Host, error) {
	var hosts []Host
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		h, err := parseHost(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		hosts = append(hosts, h)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("%s: no hosts in it (one [N/]host a line, # for comments)", name)
	}
	return hosts, nil
}

func parseHost(s string) (Host, error) {
	const want = `want [N/]host, such as "4/node1", "user@node2" or ":" for this machine`
	if s == "" {
		return Host{}, fmt.Errorf("an empty host: %s", want)
	}
	h := Host{Name: s}
	if n, name, ok := strings.Cut(s, "/"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 1 {
			return Host{}, fmt.Errorf("host %q: %q is not a number of workers, at least 1: %s", s, n, want)
		}
		h.Workers, h.Name = v, name
	}
	switch {
	case h.Name == "":
		return Host{}, fmt.Errorf("host %q names no host: %s", s, want)
	case strings.HasPrefix(h.Name, "-"):
		return Host{}, fmt.Errorf("host %q starts with -, which ssh would read as an option: %s", s, want)
	case strings.ContainsAny(h.Name, " \t/"):
		return Host{}, fmt.Errorf("host %q has a space or a slash in its name (ssh options go in --ssh-command): %s", s, want)
	}
	return h, nil
}

// Check refuses a host list that names a host twice: its workers would
// be two groups under one name.
func Check(hosts []Host) error {
	seen := map[string]bool{}
	for _, h := range hosts {
		if seen[h.Name] {
			return fmt.Errorf("host %q is given twice: give its workers once, as N/%s", h.Name, h.Name)
		}
		seen[h.Name] = true
	}
	return nil
}

// SplitCommand splits a command line as a shell would (quotes, backslashes),
// without running a shell: no variables, globs or pipes. what names the
// command line for errors.
func SplitCommand(line, what string) ([]string, error) {
	argv, err := shellquote.Split(line)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", what, line, err)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("%s is empty", what)
	}
	return argv, nil
}

// SSHCommand is the command line that starts worker on host through ssh:
// ssh's program, then -T (never a terminal: the protocol is binary) and
// BatchMode=yes (never a password or host-key prompt that would hang),
// first, since ssh keeps the first value it is given of an option, then
// the user's own options, the host, and the worker's command line quoted
// for the remote shell, which ssh hands it to. Host keys are checked as
// the user's ssh configuration says.
func SSHCommand(ssh []string, host string, worker []string) []string {
	argv := []string{ssh[0], "-T", "-o", "BatchMode=yes"}
	argv = append(argv, ssh[1:]...)
	return append(argv, host, shellquote.Join(worker...))
}
