package worker

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// dupOnto makes fd newfd a copy of oldfd, inheritable.
func dupOnto(oldfd, newfd int) error {
	if err := unix.Dup3(oldfd, newfd, 0); err != nil {
		return fmt.Errorf("dup3 onto fd %d: %w", newfd, err)
	}
	return nil
}
