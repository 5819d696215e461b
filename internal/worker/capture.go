package worker

import (
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// readBack returns what was written to the capture file fd since it was
// last emptied (its offset says how much: fd 1 shares it), at most limit
// bytes and a note of what was cut, and empties it, back at offset 0. Nil
// if nothing was written.
func readBack(fd, limit int) []byte {
	n, err := unix.Seek(fd, 0, io.SeekCurrent)
	if err != nil || n == 0 {
		return nil
	}
	keep := min(n, int64(limit))
	buf := make([]byte, keep)
	got, _ := unix.Pread(fd, buf, 0)
	buf = buf[:max(got, 0)]
	if n > keep {
		buf = fmt.Appendf(buf, "\n[poold: output truncated: %d of %d bytes kept]\n", keep, n)
	}
	unix.Ftruncate(fd, 0)
	unix.Seek(fd, 0, io.SeekStart)
	return buf
}
