package main

// orderBuffer holds results that finished before the ones ahead of them in
// the input (-k, --keep-order). Results in flight count against --window
// until they are printed, so a stream parks at most a window of them.
type orderBuffer struct {
	next   int // the index of the next result to print
	parked map[int]parked
}

type parked struct {
	o        outcome
	inFlight bool
}

func newOrderBuffer() *orderBuffer { return &orderBuffer{parked: make(map[int]parked)} }

// park keeps o until its turn.
func (b *orderBuffer) park(o outcome, inFlight bool) { b.parked[o.Index] = parked{o, inFlight} }

// skip marks index as having no result to print (a task the job log says
// is done), so that the ones after it are not held up.
func (b *orderBuffer) skip(index int) { b.parked[index] = parked{o: outcome{Index: -1}} }

// release prints, in order, the results whose turn has come.
func (b *orderBuffer) release(print func(outcome, bool)) {
	for {
		p, ok := b.parked[b.next]
		if !ok {
			return
		}
		delete(b.parked, b.next)
		b.next++
		if p.o.Index >= 0 {
			print(p.o, p.inFlight)
		}
	}
}
