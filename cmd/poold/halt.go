package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// haltRule is --halt's: when to stop a run early, as GNU parallel's
// --halt: "now" terminates what runs, "soon" lets it finish; both start
// nothing new. The rule fires when the failures (fail), the successes
// (success) or the results (done) reach n, or pct percent of the tasks (of
// the results so far, for a stream, whose length is not known).
type haltRule struct {
	now  bool
	what string // fail, success or done
	n    int
	pct  float64 // > 0: a percentage instead of n
}

// parseHalt reads "now,fail=1", "soon,fail=20%", "now,success=1",
// "soon,done=100"; "" is no rule.
func parseHalt(s string) (*haltRule, error) {
	if s == "" {
		return nil, nil
	}
	bad := fmt.Errorf("--halt %q: want WHEN,WHAT=N or WHEN,WHAT=P%%, WHEN now or soon, WHAT fail, success or done (now,fail=1; soon,fail=20%%)", s)
	when, rule, ok := strings.Cut(s, ",")
	what, count, ok2 := strings.Cut(rule, "=")
	if !ok || !ok2 || (when != "now" && when != "soon") || (what != "fail" && what != "success" && what != "done") {
		return nil, bad
	}
	h := &haltRule{now: when == "now", what: what}
	if p, isPct := strings.CutSuffix(count, "%"); isPct {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || !(v > 0 && v <= 100) {
			return nil, bad
		}
		h.pct = v
		return h, nil
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		return nil, bad
	}
	h.n = n
	return h, nil
}

// fires reports whether the rule holds after ok successes and failed
// failures, of total tasks (-1: not known).
func (h *haltRule) fires(ok, failed, total int) bool {
	count := map[string]int{"fail": failed, "success": ok, "done": ok + failed}[h.what]
	if h.pct == 0 {
		return count >= h.n
	}
	if total < 0 {
		total = ok + failed
	}
	return count > 0 && count >= int(math.Ceil(h.pct*float64(total)/100))
}

func (h *haltRule) String() string {
	when := "soon"
	if h.now {
		when = "now"
	}
	if h.pct > 0 {
		return fmt.Sprintf("%s,%s=%g%%", when, h.what, h.pct)
	}
	return fmt.Sprintf("%s,%s=%d", when, h.what, h.n)
}
