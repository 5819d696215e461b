package main

import (
	"bufio"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"time"
)

// A JSON task file runs in two passes, so that it is checked whole before
// anything runs and yet never held whole: the first walks it and checks
// every entry, keeping only what the run needs up front (checker); the
// second walks it again as the run goes and hands each entry over, as a
// stream's lines are (fileSource).
//
// What the second pass reads must be what the first checked. The file
// stays open between the two, so a file replaced in the meantime (an
// editor's save, mv, a rename) is still read as it was; one written over in
// place is not, and the first pass records a hash of each block of
// blockSize bytes, which the second checks before it hands over a byte of
// the block: a change stops the run there with an error that says so (the
// tasks before it ran), never runs what was not checked. A change seen
// before the second pass starts (the size or the modification time are not
// what they were) stops everything before it starts.
//
// Standard input, which cannot be read twice, and any file that is not a
// regular file (a pipe, <(command)) are copied, as the first pass reads
// them, to a temporary file that is removed at once (it lives as long as
// it is open), and the second pass reads the copy: the same bounded memory
// for a pipe, at the cost of the disk space of its bytes.

// blockSize is the unit of change detection: 256 KiB keeps the hashes of a
// 1 GiB file at 32 KiB.
const blockSize = 256 << 10

// fileSums are the hashes of a file's blocks, as the first pass read them.
type fileSums struct {
	seed maphash.Seed
	sums []uint64 // one per block; the last block may be short
	size int64
}

// summer passes on what it reads, hashing it block by block.
type summer struct {
	r  io.Reader
	fs *fileSums
	h  maphash.Hash
	n  int // bytes in the current block
}

func newSummer(r io.Reader) *summer {
	s := &summer{r: r, fs: &fileSums{seed: maphash.MakeSeed()}}
	s.h.SetSeed(s.fs.seed)
	return s
}

func (s *summer) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.fs.size += int64(n)
	for b := p[:n]; len(b) > 0; {
		k := min(len(b), blockSize-s.n)
		s.h.Write(b[:k])
		s.n += k
		b = b[k:]
		if s.n == blockSize {
			s.fs.sums = append(s.fs.sums, s.h.Sum64())
			s.h.Reset()
			s.n = 0
		}
	}
	if errors.Is(err, io.EOF) && s.n > 0 {
		s.fs.sums = append(s.fs.sums, s.h.Sum64())
		s.h.Reset()
		s.n = 0
	}
	return n, err
}

// changedError says that the file is not what the first pass checked.
type changedError struct{ from, to int64 }

func (e *changedError) Error() string {
	return fmt.Sprintf("the file changed after it was checked (bytes %d to %d are not what they were); nothing after them runs", e.from, e.to)
}

// verifier reads a file again for the second pass and passes on each
// block only once its hash is the first pass's.
type verifier struct {
	r     io.Reader
	fs    *fileSums
	block []byte
	have  []byte // checked, not yet read
	next  int    // the next block
	err   error  // what ends the input, once have is read
}

func newVerifier(r io.Reader, fs *fileSums) *verifier {
	return &verifier{r: r, fs: fs, block: make([]byte, blockSize)}
}

func (v *verifier) Read(p []byte) (int, error) {
	if len(v.have) == 0 {
		if v.err != nil {
			return 0, v.err
		}
		n, err := io.ReadFull(v.r, v.block)
		off := int64(v.next) * blockSize
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			v.err = io.EOF
		case err != nil:
			v.err = err // a read error: not a block to check
			return 0, err
		}
		switch {
		case n == 0 && off == v.fs.size && v.err != nil:
			return 0, v.err
		case v.next >= len(v.fs.sums) || maphash.Bytes(v.fs.seed, v.block[:n]) != v.fs.sums[v.next] ||
			(v.err == io.EOF && off+int64(n) != v.fs.size):
			v.err = &changedError{off, max(off+int64(n), min(off+blockSize, v.fs.size))}
			return 0, v.err
		}
		v.next++
		v.have = v.block[:n]
	}
	n := copy(p, v.have)
	v.have = v.have[n:]
	return n, nil
}

// taskFileInput is a task file open for both passes.
type taskFileInput struct {
	name  string   // for messages ("stdin" for -)
	f     *os.File // the file, or the copy of standard input or of a pipe
	spool bool     // f is a copy
	size  int64    // a file's size and modification time, before the first pass
	mtime time.Time
	sums  *fileSums
}

// errNoCopy says that standard input (or a pipe) could not be copied to
// a temporary file: it is then read into memory, as before the two passes
// (openTaskFile returns it unread, with what closes it).
var errNoCopy = errors.New("no temporary file for a copy")

// openTaskFile opens the task file path ("-": stdin), name in messages,
// and returns the reader of the first pass, and what to call once it has
// read everything: it finishes the copy of a pipe.
func openTaskFile(path, name string, stdin io.Reader) (in *taskFileInput, first io.Reader, done func() error, err error) {
	in = &taskFileInput{name: name}
	src, srcFile := stdin, (*os.File)(nil)
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, nil, nil, err
		}
		if fi.Mode().IsRegular() {
			in.f, in.size, in.mtime = f, fi.Size(), fi.ModTime()
			s := newSummer(f)
			in.sums = s.fs
			return in, s, func() error { return nil }, nil
		}
		src, srcFile = f, f
	}
	spool, err := os.CreateTemp("", "poold-tasks-*.json")
	if err != nil {
		// The input is still unread: the caller reads it into memory.
		return in, src, func() error {
			if srcFile != nil {
				return srcFile.Close()
			}
			return nil
		}, fmt.Errorf("%w: %v", errNoCopy, err)
	}
	// Removed at once: the copy lives as long as it is open, and nothing is
	// left behind however poold ends.
	os.Remove(spool.Name())
	in.f, in.spool = spool, true
	w := &copyWriter{w: bufio.NewWriterSize(spool, walkChunk), name: name}
	s := newSummer(io.TeeReader(src, w))
	in.sums = s.fs
	done = func() error {
		if srcFile != nil {
			srcFile.Close()
		}
		if err := w.w.Flush(); err != nil {
			return w.fail(err)
		}
		return nil
	}
	return in, s, done, nil
}

// copyWriter writes the copy of a pipe, and says so when it cannot.
type copyWriter struct {
	w    *bufio.Writer
	name string
}

func (c *copyWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		err = c.fail(err)
	}
	return n, err
}

func (c *copyWriter) fail(err error) error {
	return fmt.Errorf("writing a copy of %s, to read it twice: %w", c.name, err)
}

// unchanged checks, between the passes, that a file is as the first pass
// found it: as large as it read, with the same size and modification time.
func (in *taskFileInput) unchanged() error {
	if in.spool {
		return nil
	}
	fi, err := in.f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != in.size || !fi.ModTime().Equal(in.mtime) || in.sums.size != in.size {
		return fmt.Errorf("%s changed while it was being checked (it was %d bytes, modified %s; now %d bytes, modified %s): check it again",
			in.name, in.size, in.mtime.Format(time.RFC3339Nano), fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
	}
	return nil
}

// reader reads the file again from the start, checking it against the
// first pass's hashes.
func (in *taskFileInput) reader() io.Reader {
	return newVerifier(io.NewSectionReader(in.f, 0, 1<<62), in.sums)
}

// errStopped ends the second pass's walk when the run wants no more.
var errStopped = errors.New("stopped")

// fileSource is the second pass: it reads the checked file tf again and
// delivers its entries, and closes the file when it is done.
func fileSource(in *taskFileInput, tf *TaskFile, known []string) *source {
	return newSource(true, func(s *sender) error {
		defer in.f.Close()
		fast := &fastParser{known: known}
		first := 0
		w := newWalker(in.reader())
		w.fast = fast
		_, err := w.walk(func(r *rawEntry) error {
			if r.List != tf.list {
				return nil
			}
			var e *Entry
			if r.Parsed || (r.Data != nil && fast.parse(r.Data)) {
				e = fast.entry(r.Pos, r.Line)
			} else {
				// An entry that only the exact way takes: the first pass
				// found it right.
				raw, err := r.value()
				if err != nil {
					return err
				}
				p := parser{known: known}
				var ok bool
				if e, ok = p.entry(r.Pos, r.Line, raw); !ok {
					return fmt.Errorf("entry %d: %v", r.Pos, p.problems)
				}
			}
			e.First = first
			first += e.Count()
			if !s.send(e) {
				return errStopped
			}
			return nil
		})
		var ce *changedError
		switch {
		case errors.Is(err, errStopped):
			return nil
		case errors.As(err, &ce):
			return err
		case err != nil:
			// The first pass took what the second does not: the file is
			// not what it was, though its blocks hashed the same.
			return fmt.Errorf("the file changed after it was checked: %v", err)
		case first != tf.Results:
			return fmt.Errorf("the file changed after it was checked: %d results, where it had %d", first, tf.Results)
		}
		return nil
	})
}
