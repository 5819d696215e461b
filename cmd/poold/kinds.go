package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/poold/poold"
)

// defaultRetryOn is what --retries retries unless --retry-on says
// otherwise: the pool's default, the failures that are the worker's, not
// the task's.
const defaultRetryOn = "worker_lost,timeout"

// retryableKinds are the kinds a task of the built-in workers can fail
// with, the ones worth a retry first. The others (terminated, start,
// bad_task, unknown_func) are the pool's or the caller's: running the task
// again would not change them.
var retryableKinds = []poold.Kind{
	poold.KindWorkerLost, poold.KindTimeout, poold.KindMemoryLimit, poold.KindProtocol,
	poold.KindExitStatus, poold.KindError, poold.KindPanic, poold.KindBadArgs,
	poold.KindEncode, poold.KindResultTooLarge, poold.KindCanceled,
}

// kindName is what a worker program's own kinds look like.
var kindName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// checkRetryKind says what is wrong with k as a kind to retry, if
// anything. custom allows kinds of a --worker-cmd program's own.
func checkRetryKind(k string, custom bool) error {
	if slices.Contains(retryableKinds, poold.Kind(k)) {
		return nil
	}
	switch poold.Kind(k) {
	case poold.KindTerminated, poold.KindStart, poold.KindBadTask, poold.KindUnknownFunc:
		return fmt.Errorf("kind %s cannot be retried: it is not the task's failure; the kinds that can: %s", k, kindList(retryableKinds))
	}
	if custom && kindName.MatchString(k) {
		return nil // the worker program may fail with kinds of its own
	}
	return fmt.Errorf("unknown kind %q; the kinds that can be retried: %s", k, kindList(retryableKinds))
}

func kindList(ks []poold.Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// parseRetryOn checks the value of --retry-on and returns it cleaned up:
// the kinds, comma-separated, without spaces or repeats. "" retries none.
func parseRetryOn(s string, custom bool) (string, error) {
	var kinds []string
	for k := range strings.SplitSeq(s, ",") {
		k = strings.TrimSpace(k)
		if k == "" && strings.TrimSpace(s) == "" {
			break
		}
		if k == "" {
			return "", fmt.Errorf("an empty kind in %q", s)
		}
		if err := checkRetryKind(k, custom); err != nil {
			return "", err
		}
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	return strings.Join(kinds, ","), nil
}

// retryKinds is a value of config.retryOn as poold kinds.
func retryKinds(s string) []poold.Kind {
	var ks []poold.Kind
	for k := range strings.SplitSeq(s, ",") {
		if k != "" {
			ks = append(ks, poold.Kind(k))
		}
	}
	return ks
}
