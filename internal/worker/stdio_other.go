//go:build !linux

package worker

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// dupOnto makes fd newfd a copy of oldfd, inheritable. Darwin has no dup3;
// dup2 is the same call without flags.
func dupOnto(oldfd, newfd int) error {
	if err := unix.Dup2(oldfd, newfd); err != nil {
		return fmt.Errorf("dup2 onto fd %d: %w", newfd, err)
	}
	return nil
}
