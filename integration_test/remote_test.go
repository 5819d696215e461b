package integration_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poold/poold"
	"github.com/poold/poold/internal/sshtest"
)

// Workers on other machines, through a real OpenSSH server: two sshd
// servers on 127.0.0.1 stand for two hosts (internal/sshtest), and the
// worker on each is the poold under test, run as `poold worker`.

// sshRun is what every --ssh run of these tests passes: the hosts' ssh
// configuration (host keys checked against the servers' own) and the
// remote poold, by absolute path (a remote command's PATH is sshd's).
func sshRun(c *sshtest.Cluster, hosts string, args ...string) []string {
	return append([]string{"--ssh", hosts, "--ssh-command", strings.Join(c.SSH(), " "), "--remote-poold", pooldBin}, args...)
}

// spyTask is an exec task that writes where it runs (its worker's pid, the
// worker's ssh connection) to file, then sleeps for secs: the test learns
// which remote process to kill.
func spyTask(id, file string, secs int) task {
	return task{ID: id, Func: "exec", Args: map[string]any{"argv": []string{"sh", "-c",
		fmt.Sprintf(`echo "$PPID $SSH_CONNECTION" > %s.tmp && mv %s.tmp %s && exec sleep %d`, file, file, file, secs)}}}
}

// waitSpy waits for a spyTask's file: the worker's pid and the local port
// of its ssh connection (0: not through ssh).
func waitSpy(t *testing.T, file string) (pid, port int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(file)
		if err == nil {
			f := strings.Fields(string(b))
			pid, _ = strconv.Atoi(f[0])
			if len(f) >= 3 { // through ssh
				port, _ = strconv.Atoi(f[2])
			}
			return pid, port
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", file)
	return 0, 0
}

// sshClientOn returns the pid of poold's child ssh whose connection has
// local port port, from /proc/net/tcp and the children's descriptors.
func sshClientOn(t *testing.T, poold, port int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	inode := ""
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 9 && strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) {
			inode = f[9]
		}
	}
	if inode == "" {
		t.Fatalf("no TCP socket on local port %d", port)
	}
	for _, child := range childrenOf([]int{poold}) {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", child))
		for _, fd := range fds {
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", child, fd.Name())); l == "socket:["+inode+"]" {
				return child
			}
		}
	}
	t.Fatalf("no child of poold holds the socket of local port %d", port)
	return 0
}

// summaryOf is the last line of a --json run's stderr, its summary.
func summaryOf(t *testing.T, stderr string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	var s struct {
		Summary map[string]any `json:"summary"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil || s.Summary == nil {
		t.Fatalf("the last stderr line is no summary (%v):\n%s", err, stderr)
	}
	return s.Summary
}

// TestSSHTwoHosts: 200 echo and sleep tasks on 2 workers on each of two
// hosts: every result names its host and a remote worker's pid, and both
// hosts run tasks; nothing is left running on either side.
func TestSSHTwoHosts(t *testing.T) {
	t.Parallel()
	c := sshtest.Hosts(t, "hostA", "hostB")
	var tasks []task
	for i := range 200 {
		if i%4 == 0 {
			tasks = append(tasks, task{ID: fmt.Sprintf("s%d", i), Func: "sleep", Args: map[string]any{"seconds": 0.01}})
		} else {
			tasks = append(tasks, echoTask(fmt.Sprintf("e%d", i), i))
		}
	}
	file := writeTasks(t, tasks)
	r := runPoold(t, runOpts{}, sshRun(c, "2/hostA,2/hostB", "--json", file)...)
	if r.Code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	if len(recs) != 200 {
		t.Fatalf("%d results, want 200", len(recs))
	}
	perHost := map[string]map[int]bool{}
	for id, rec := range recs {
		if !rec.ok() || rec.PID <= 0 || rec.PID == r.PID {
			t.Errorf("%s: ok %v, pid %d (poold's is %d)", id, rec.ok(), rec.PID, r.PID)
		}
		if perHost[rec.Host] == nil {
			perHost[rec.Host] = map[int]bool{}
		}
		perHost[rec.Host][rec.PID] = true
	}
	if len(perHost) != 2 || len(perHost["hostA"]) == 0 || len(perHost["hostB"]) == 0 {
		t.Errorf("tasks ran on %v, want hostA and hostB both", perHost)
	}
	for h, pids := range perHost {
		if len(pids) > 2 {
			t.Errorf("%s: %d worker pids, want at most its 2 workers", h, len(pids))
		}
	}
	if !strings.Contains(r.Stderr, "on 4 workers (2 on hostA, 2 on hostB)") {
		t.Errorf("the header does not say where the workers run:\n%s", r.Stderr)
	}
	checkNothingLeft(t, c, 0, "hostA", "hostB")
}

// TestSSHHostsFromTheirCPUs: a host given without a number gets as many
// workers as its hello says it has CPUs, and the text table names hosts.
func TestSSHHostsFromTheirCPUs(t *testing.T) {
	t.Parallel()
	c := sshtest.Hosts(t, "hostA", "hostB")
	hosts := writeFile(t, "hosts", "# two hosts\nhostA\n\n1/hostB\n")
	var tasks []task
	for i := range 8 {
		tasks = append(tasks, echoTask(fmt.Sprintf("e%d", i), i))
	}
	args := []string{"--ssh-file", hosts, "--ssh-command", strings.Join(c.SSH(), " "), "--remote-poold", pooldBin, writeTasks(t, tasks)}
	r := runPoold(t, runOpts{}, args...)
	if r.Code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.Code, r.Stderr)
	}
	want := fmt.Sprintf("on %d workers (%d on hostA, 1 on hostB)", runtime.NumCPU()+1, runtime.NumCPU())
	if !strings.Contains(r.Stdout, want) {
		t.Errorf("stdout lacks %q:\n%s", want, r.Stdout)
	}
	if !strings.Contains(r.Stdout, "HOST ") || !strings.Contains(r.Stdout, "\nhost") {
		t.Errorf("the table has no HOST column:\n%s", r.Stdout)
	}
}

// TestSSHKillRemoteWorkerAndClient: killing a remote worker process, and
// killing the ssh client of another slot, each fails only the task that
// ran there, with worker_lost and the host; both slots are restarted and
// every other task succeeds.
func TestSSHKillRemoteWorkerAndClient(t *testing.T) {
	t.Parallel()
	c := sshtest.Hosts(t, "hostA", "hostB")
	dir := t.TempDir()
	worker, client := filepath.Join(dir, "worker"), filepath.Join(dir, "client")
	tasks := []task{spyTask("victim-worker", worker, 60), spyTask("victim-ssh", client, 60)}
	for i := range 40 {
		tasks = append(tasks, task{ID: fmt.Sprintf("s%d", i), Func: "sleep", Args: map[string]any{"seconds": 0.1}})
	}
	p := startPoold(t, runOpts{timeout: 90 * time.Second}, sshRun(c, "2/hostA,2/hostB", "--json", writeTasks(t, tasks))...)
	wpid, _ := waitSpy(t, worker)
	if err := syscall.Kill(wpid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the remote worker %d: %v", wpid, err)
	}
	_, port := waitSpy(t, client)
	if port == 0 {
		t.Fatal("the task did not run through ssh: no SSH_CONNECTION")
	}
	sshPID := sshClientOn(t, p.cmd.Process.Pid, port)
	if err := syscall.Kill(sshPID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the ssh client %d: %v", sshPID, err)
	}
	r := p.wait(t)
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1 (two tasks failed); stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	if len(recs) != len(tasks) {
		t.Fatalf("%d results, want %d", len(recs), len(tasks))
	}
	for id, rec := range recs {
		switch id {
		case "victim-worker", "victim-ssh":
			if rec.ok() || rec.Error.Kind != "worker_lost" || rec.Host == "" || rec.Host == ":" {
				t.Errorf("%s: %+v, want worker_lost on its host", id, rec.Error)
				continue
			}
			t.Logf("%s: %s", id, rec.Error.Message)
		default:
			if !rec.ok() {
				t.Errorf("%s failed: %+v", id, rec.Error)
			}
		}
	}
	if rec := recs["victim-worker"]; rec != nil && (rec.PID != wpid || !strings.Contains(rec.Error.Message, "lost: ssh") ||
		!strings.Contains(rec.Error.Message, fmt.Sprintf("worker pid %d on %s", wpid, rec.Host))) {
		t.Errorf("victim-worker: pid %d, message %q; want worker pid %d on its host, and ssh's 255", rec.PID, rec.Error.Message, wpid)
	}
	if rec := recs["victim-ssh"]; rec != nil && !strings.Contains(rec.Error.Message, fmt.Sprintf("its ssh (pid %d) was killed by signal 9", sshPID)) {
		t.Errorf("victim-ssh: %q, want it to say its ssh (pid %d) was killed", rec.Error.Message, sshPID)
	}
	if n := summaryOf(t, r.Stderr)["workers_started"].(float64); n < 6 {
		t.Errorf("%v workers started, want 4 + 2 replacements", n)
	}
	checkNothingLeft(t, c, 0, "hostA", "hostB")
}

// TestSSHHostGoesAway: stopping one host's sshd mid-run (its sessions cut,
// new connections refused) takes that host out of rotation with one
// warning, and the other host finishes every task.
func TestSSHHostGoesAway(t *testing.T) {
	t.Parallel()
	c := sshtest.Hosts(t, "hostA", "hostB")
	tasks := sleeps(200, 0.02)
	p := startPoold(t, runOpts{timeout: 90 * time.Second}, sshRun(c, "2/hostA,2/hostB", "--json", "--retries", "2", writeTasks(t, tasks))...)
	onB := 0
	for line := range p.lines {
		if strings.Contains(line, `"host":"hostB"`) {
			if onB++; onB == 10 {
				break
			}
		}
	}
	c.Host("hostB").Stop()
	stopped := time.Now()
	r := p.wait(t)
	if r.Code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	if len(recs) != len(tasks) {
		t.Fatalf("%d results, want %d", len(recs), len(tasks))
	}
	for id, rec := range recs {
		if !rec.ok() {
			t.Errorf("%s failed: %+v", id, rec.Error)
		}
		if end, err := time.Parse(time.RFC3339Nano, rec.End); err == nil && rec.Host == "hostB" && end.After(stopped.Add(time.Second)) {
			t.Errorf("%s ran on hostB after its sshd was stopped (ended %v after)", id, end.Sub(stopped))
		}
	}
	if n := strings.Count(r.Stderr, "out of rotation"); n != 1 || !strings.Contains(r.Stderr, "host hostB is out of rotation") {
		t.Errorf("%d out-of-rotation warnings, want one for hostB:\n%s", n, r.Stderr)
	}
	checkNothingLeft(t, c, 0, "hostB")
}

// TestSSHParentKilled: SIGKILL of poold leaves nothing on the remote
// side: its ssh clients die with it (Pdeathsig), and each remote worker,
// whose stdout then has no reader, ends its process group, the task's
// children too, within 2 s.
func TestSSHParentKilled(t *testing.T) {
	t.Parallel()
	c := sshtest.Hosts(t, "hostA", "hostB")
	dir := t.TempDir()
	var tasks []task
	var spies []string
	for i := range 4 {
		spies = append(spies, filepath.Join(dir, fmt.Sprint(i)))
		tasks = append(tasks, spyTask(fmt.Sprintf("spy%d", i), spies[i], 60))
	}
	p := startPoold(t, runOpts{}, sshRun(c, "2/hostA,2/hostB", "--json", writeTasks(t, tasks))...)
	for _, f := range spies {
		waitSpy(t, f)
	}
	remote := append(c.Host("hostA").Remote(), c.Host("hostB").Remote()...)
	if len(remote) < 8 { // 4 workers, each with its task's sleep
		t.Fatalf("%d remote processes before the kill, want 4 workers and their 4 tasks: %v", len(remote), remote)
	}
	p.cmd.Process.Kill()
	p.wait(t)
	if left := waitDead(remote, 2*time.Second); len(left) > 0 {
		t.Errorf("2 s after SIGKILL of poold, remote processes live on: %v", left)
	}
}

// TestSSHTimeoutAndMemory: on a remote worker, a task that ignores its
// time limit fails with kind timeout and one that allocates without end
// with kind memory_limit (the remote worker measures itself, says so on
// stderr and ends its group; the parent blames the task and closes the
// connection); both workers are replaced, the other tasks succeed, and
// nothing is left on the host.
func TestSSHTimeoutAndMemory(t *testing.T) {
	t.Parallel()
	c := sshtest.Hosts(t, "hostA")
	tasks := []task{
		{ID: "hang", Func: "crash", Args: map[string]any{"mode": "hang"}, Timeout: "500ms"},
		{ID: "oom", Func: "crash", Args: map[string]any{"mode": "oom"}},
	}
	for i := range 20 {
		tasks = append(tasks, echoTask(fmt.Sprintf("e%d", i), i))
	}
	r := runPoold(t, runOpts{}, sshRun(c, "2/hostA", "--json", "--max-worker-memory", "256M", writeTasks(t, tasks))...)
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	if len(recs) != len(tasks) {
		t.Fatalf("%d results, want %d", len(recs), len(tasks))
	}
	for id, rec := range recs {
		switch id {
		case "hang":
			if rec.ok() || rec.Error.Kind != "timeout" || rec.Host != "hostA" {
				t.Errorf("hang: host %q, %+v; want timeout on hostA", rec.Host, rec.Error)
			}
		case "oom":
			if rec.ok() || rec.Error.Kind != "memory_limit" || !strings.Contains(rec.Error.Message, "over the limit of 256.0 MiB") {
				t.Errorf("oom: %+v; want memory_limit, saying by how much", rec.Error)
			}
		default:
			if !rec.ok() {
				t.Errorf("%s failed: %+v", id, rec.Error)
			}
		}
	}
	checkNothingLeft(t, c, 0, "hostA")
}

// TestSSHFromGo: poold.WithSSH in an embedding program: a host given with
// its count and one without (asked for its CPUs first); results say their
// host, and Terminate leaves nothing on either.
func TestSSHFromGo(t *testing.T) {
	t.Parallel()
	c := sshtest.Hosts(t, "hostA", "hostB")
	p, err := poold.New(ctxT(t, 30*time.Second), poold.WithSSH(poold.SSH{
		Hosts: []string{"1/hostA", "hostB"}, Command: c.SSH(), Worker: []string{pooldBin, "worker"}}))
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + runtime.NumCPU(); p.Size() != want {
		t.Errorf("Size %d, want 1 on hostA and %d (its CPUs) on hostB", p.Size(), runtime.NumCPU())
	}
	hosts := map[string]int{}
	var results []*poold.AsyncResult[poold.Raw]
	for i := range 50 {
		r, err := p.ApplyAsync("sleep", map[string]any{"seconds": 0.005 * float64(i%3)})
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	for _, r := range results {
		res, err := r.Get(t.Context())
		if err != nil || res.PID <= 0 {
			t.Fatalf("%+v, %v", res, err)
		}
		hosts[res.Host]++
	}
	if len(hosts) != 2 || hosts["hostA"] == 0 || hosts["hostB"] == 0 {
		t.Errorf("tasks per host: %v, want both", hosts)
	}
	if err := p.Terminate(); err != nil {
		t.Fatal(err)
	}
	checkNothingLeft(t, c, 2*time.Second, "hostA", "hostB")
	// Bad host lists are refused before anything starts.
	for _, bad := range []poold.SSH{{}, {Hosts: []string{"0/hostA"}}, {Hosts: []string{"hostA,hostA"}}} {
		if _, err := poold.New(t.Context(), poold.WithSSH(bad)); err == nil || !strings.Contains(err.Error(), "WithSSH") {
			t.Errorf("WithSSH(%+v): %v", bad, err)
		}
	}
}

// TestSSHEveryHostGoes: when every host's sshd stops mid-run, the tasks
// left fail with kind start once the hosts are out of rotation: every
// task still has exactly one result, and poold exits 1.
func TestSSHEveryHostGoes(t *testing.T) {
	t.Parallel()
	c := sshtest.Hosts(t, "hostA", "hostB")
	tasks := sleeps(100, 0.02)
	trace := filepath.Join(t.TempDir(), "trace.json")
	p := startPoold(t, runOpts{timeout: 90 * time.Second}, sshRun(c, "1/hostA,1/hostB", "--json", "--trace", trace, writeTasks(t, tasks))...)
	n := 0
	for range p.lines {
		if n++; n == 10 {
			break
		}
	}
	c.Host("hostA").Stop()
	c.Host("hostB").Stop()
	r := p.wait(t)
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	if len(recs) != len(tasks) {
		t.Fatalf("%d results, want %d", len(recs), len(tasks))
	}
	kinds := map[string]int{}
	for _, rec := range recs {
		if rec.ok() {
			kinds["ok"]++
		} else {
			kinds[rec.Error.Kind]++
		}
	}
	if kinds["start"] == 0 || kinds["ok"] < 10 || kinds["ok"]+kinds["start"]+kinds["worker_lost"] != len(tasks) {
		t.Errorf("results by kind: %v; want ok, then worker_lost and start only", kinds)
	}
	if !strings.Contains(r.Stderr, "out of rotation") {
		t.Errorf("no out-of-rotation warning:\n%s", r.Stderr)
	}
	// The trace has a process track per host.
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{`"name":"hostA"`, `"name":"hostB"`} {
		if !strings.Contains(string(b), h) {
			t.Errorf("the trace has no track %s", h)
		}
	}
}

// checkNothingLeft fails the test for every process the sessions of hosts
// started that is still alive after grace (0: now).
func checkNothingLeft(t *testing.T, c *sshtest.Cluster, grace time.Duration, hosts ...string) {
	t.Helper()
	for _, h := range hosts {
		if left := waitDead(c.Host(h).Remote(), grace); len(left) > 0 {
			t.Errorf("%s: processes left after the run: %v", h, left)
		}
	}
}

// sleeps is n sleep tasks of secs seconds each, ids s0, s1, ...
func sleeps(n int, secs float64) []task {
	tasks := make([]task, n)
	for i := range tasks {
		tasks[i] = task{ID: fmt.Sprintf("s%d", i), Func: "sleep", Args: map[string]any{"seconds": secs}}
	}
	return tasks
}
