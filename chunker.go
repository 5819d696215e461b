package poold

import "github.com/poold/poold/internal/pool"

// chunker cuts a stream of arguments into tasks of up to size calls whose
// arguments are encoded back to back into one buffer: the one chunk shape
// of Map and IMap. A Map of a million items is a few allocations besides
// its results. Each chunk is submitted as soon as it is full, so that the
// workers start while the rest is encoded. An argument that does not
// encode belongs to no chunk: the chunk before it is sent, the next begins
// after it.
type chunker[R any] struct {
	c    *call[R]
	size int
	each func(*pool.Task, int, *pool.Outcome) // every chunk's; Tag is the index of its first item
	done func(*pool.Task)
	// group ties the chunks together: cancelling it cancels them all,
	// those not yet submitted included.
	group pool.Group

	buf   []byte
	hint  int // the size of the next chunk's buffer, made when its first item comes
	first int // the index of the chunk's first item
	n     int // items in the chunk
	sent  int // chunks submitted
}

// next is the index the next argument's item will have.
func (k *chunker[R]) next() int { return k.first + k.n }

// add encodes the argument of item k.next(). encErr says that it did not
// encode: the item is then the caller's to fail. err says that the pool
// refused a chunk.
func (k *chunker[R]) add(a any) (encErr, err error) {
	if k.buf == nil && k.hint > 0 {
		k.buf = make([]byte, 0, k.hint)
	}
	mark := len(k.buf)
	buf, encErr := appendArg(k.buf, a)
	if encErr != nil {
		k.buf = buf[:mark]
		if err := k.flush(); err != nil {
			return nil, err
		}
		k.first++
		return encErr, nil
	}
	k.buf = buf
	if k.n++; k.n == k.size {
		return nil, k.flush()
	}
	return nil, nil
}

// flush submits the chunk being built, if it has items.
func (k *chunker[R]) flush() error {
	if k.n == 0 {
		return nil
	}
	t := new(pool.Task)
	k.c.fill(t, k.buf, k.n)
	t.Tag, t.Each, t.Done, t.Group = k.first, k.each, k.done, &k.group
	t.Base, t.Indexed = k.first, true
	if err := k.c.submit(t); err != nil {
		return err
	}
	k.sent++
	k.hint = len(k.buf) + len(k.buf)/8
	k.buf = nil
	k.first, k.n = k.first+k.n, 0
	return nil
}
