package main

// The physical limit: a Go parent and copies of its own binary over
// stdin/stdout pipes, without poold. Each child decodes every 50-byte
// msgpack frame, encodes it again and writes it back; the parent keeps a
// window of frames in flight to each child, or one at a time.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// ppMsg is the frame payload: 4-byte big-endian length + msgpack of
// {ID; Func "echo"; Args [16]byte}, 50 bytes in all.
type ppMsg struct {
	ID   uint64
	Func string
	Args []byte
}

// flushEachEnv, set to 1 for a ping-pong child, makes it write each reply
// before it reads the next frame, as a poold worker must.
const flushEachEnv = "POOLD_BENCH_FLUSH_EACH"

// pingPongChild is the child's side: write 'R' when ready, then decode each
// frame, re-encode it and write it back, flushing only when the input
// buffer is empty (so a pipelined parent gets batched writes, a ping-pong
// parent one write per reply), or after every reply with flushEachEnv.
func pingPongChild() {
	flushEach := os.Getenv(flushEachEnv) == "1"
	r := bufio.NewReaderSize(os.Stdin, 64<<10)
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	w.WriteByte('R')
	w.Flush()
	var hdr [4]byte
	in := make([]byte, 0, 256)
	br := bytes.NewReader(nil)
	dec := msgpack.NewDecoder(br)
	var out bytes.Buffer
	enc := msgpack.NewEncoder(&out)
	var m ppMsg
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			os.Exit(0)
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if cap(in) < n {
			in = make([]byte, n)
		}
		in = in[:n]
		if _, err := io.ReadFull(r, in); err != nil {
			os.Exit(1)
		}
		br.Reset(in)
		dec.Reset(br)
		if err := dec.Decode(&m); err != nil {
			fmt.Fprintln(os.Stderr, "ping-pong child: decode:", err)
			os.Exit(1)
		}
		out.Reset()
		if err := enc.Encode(&m); err != nil {
			os.Exit(1)
		}
		binary.BigEndian.PutUint32(hdr[:], uint32(out.Len()))
		w.Write(hdr[:])
		w.Write(out.Bytes())
		if flushEach || r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				os.Exit(1)
			}
		}
	}
}

type ppChild struct {
	cmd   *exec.Cmd
	stdin *os.File
	r     *bufio.Reader
	w     *bufio.Writer
}

// startPingPong starts one child. With blocking, the parent's pipe ends are
// switched to blocking mode (File.Fd does that) so that reads and writes are
// plain blocking syscalls; otherwise they go through Go's netpoller, as
// os/exec's and poold's do.
//
// With via (an ssh command line up to its host), the child is started
// through it, on the other side of an ssh connection: the parent's pipes
// are then ssh's.
func startPingPong(via []string, blocking, flushEach bool) (*ppChild, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	env := []string{childEnv + "=pingpong"}
	if flushEach {
		env = append(env, flushEachEnv+"=1")
	}
	var cmd *exec.Cmd
	if len(via) == 0 {
		cmd = exec.Command(self)
		cmd.Env = append(os.Environ(), env...)
	} else {
		remote := strings.Join(env, " ") + " " + shellJoin([]string{self})
		cmd = exec.Command(via[0], append(via[1:], remote)...)
	}
	cmd.Stderr = os.Stderr
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout = inR, outW
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, err
	}
	if blocking {
		inW.Fd()
		outR.Fd()
	}
	return &ppChild{cmd: cmd, stdin: inW, r: bufio.NewReaderSize(outR, 64<<10), w: bufio.NewWriterSize(inW, 64<<10)}, nil
}

func (c *ppChild) waitReady() error {
	b, err := c.r.ReadByte()
	if err != nil {
		return err
	}
	if b != 'R' {
		return fmt.Errorf("ping-pong child: bad ready byte %q", b)
	}
	return nil
}

func (c *ppChild) stop() error {
	c.stdin.Close()
	return c.cmd.Wait()
}

// framer encodes requests and decodes replies, reusing its buffers.
type framer struct {
	out  bytes.Buffer
	enc  *msgpack.Encoder
	in   []byte
	br   *bytes.Reader
	dec  *msgpack.Decoder
	args []byte
	m    ppMsg
}

// newFramer makes a framer whose requests carry argsLen bytes of
// arguments (16 in the 50-byte frames of most rows).
func newFramer(argsLen int) *framer {
	f := &framer{args: bytes.Repeat([]byte{7}, argsLen), in: make([]byte, max(256, argsLen+64)), br: bytes.NewReader(nil)}
	f.enc = msgpack.NewEncoder(&f.out)
	f.dec = msgpack.NewDecoder(f.br)
	return f
}

func (f *framer) send(w *bufio.Writer, id uint64) error {
	f.out.Reset()
	if err := f.enc.Encode(&ppMsg{ID: id, Func: "echo", Args: f.args}); err != nil {
		return err
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(f.out.Len()))
	w.Write(hdr[:])
	_, err := w.Write(f.out.Bytes())
	return err
}

func (f *framer) recv(r *bufio.Reader) (uint64, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if cap(f.in) < n {
		f.in = make([]byte, n)
	}
	f.in = f.in[:n]
	if _, err := io.ReadFull(r, f.in); err != nil {
		return 0, err
	}
	f.br.Reset(f.in)
	f.dec.Reset(f.br)
	if err := f.dec.Decode(&f.m); err != nil {
		return 0, err
	}
	return f.m.ID, nil
}

// roundTrips does n round trips with c, at most window requests in flight,
// each frame with argsLen bytes of arguments, and returns each request's
// latency.
func roundTrips(c *ppChild, n, window, argsLen int, base uint64) ([]time.Duration, error) {
	lat := make([]time.Duration, n)
	if window <= 1 {
		f := newFramer(argsLen)
		for i := range n {
			t0 := time.Now()
			if err := f.send(c.w, base+uint64(i)); err != nil {
				return nil, err
			}
			if err := c.w.Flush(); err != nil {
				return nil, err
			}
			id, err := f.recv(c.r)
			if err != nil {
				return nil, err
			}
			lat[i] = time.Since(t0)
			if id != base+uint64(i) {
				return nil, fmt.Errorf("ping-pong: id %d, want %d", id, base+uint64(i))
			}
		}
		return lat, nil
	}
	// Pipelined: a writer goroutine holding up to window credits, this
	// goroutine reading replies and handing credits back.
	sent := make([]int64, n)
	credits := make(chan struct{}, window)
	for range window {
		credits <- struct{}{}
	}
	epoch := time.Now()
	werr := make(chan error, 1)
	go func() {
		f := newFramer(argsLen)
		for i := range n {
			<-credits
			atomic.StoreInt64(&sent[i], int64(time.Since(epoch)))
			if err := f.send(c.w, base+uint64(i)); err != nil {
				werr <- err
				return
			}
			if len(credits) == 0 || i == n-1 { // about to block: push what we have
				if err := c.w.Flush(); err != nil {
					werr <- err
					return
				}
			}
		}
		werr <- nil
	}()
	f := newFramer(argsLen)
	for i := range n {
		id, err := f.recv(c.r)
		if err != nil {
			return nil, err
		}
		now := int64(time.Since(epoch))
		if k := int(id - base); k != i {
			return nil, fmt.Errorf("ping-pong: reply %d out of order, want %d", k, i)
		}
		lat[i] = time.Duration(now - atomic.LoadInt64(&sent[i]))
		credits <- struct{}{}
	}
	return lat, <-werr
}

// pingPongResult is the median over reps of the round-trip rate (all
// children together) and of each rep's latency p50 and p99.
type pingPongResult struct {
	rate, p50, p99 float64 // round trips/s, µs, µs
}

// pingPong measures children × window round trips, per child n per rep,
// after a warm-up of warm per child.
func pingPong(children, window, n, warm, reps int, blocking, flushEach bool) (pingPongResult, error) {
	return pingPongVia(nil, children, window, n, warm, reps, blocking, flushEach)
}

// pingPongVia is pingPong with children started through via (see
// startPingPong).
func pingPongVia(via []string, children, window, n, warm, reps int, blocking, flushEach bool) (pingPongResult, error) {
	return pingPongSized(via, children, window, n, warm, reps, blocking, flushEach, 16)
}

// pingPongSized is pingPongVia with frames of argsLen bytes of arguments.
func pingPongSized(via []string, children, window, n, warm, reps int, blocking, flushEach bool, argsLen int) (pingPongResult, error) {
	var res pingPongResult
	kids := make([]*ppChild, 0, children)
	defer func() {
		for _, c := range kids {
			c.stop()
		}
	}()
	for range children {
		c, err := startPingPong(via, blocking, flushEach)
		if err != nil {
			return res, err
		}
		kids = append(kids, c)
		if err := c.waitReady(); err != nil {
			return res, err
		}
	}
	var base uint64
	runAll := func(per int) ([]time.Duration, time.Duration, error) {
		var wg sync.WaitGroup
		lats := make([][]time.Duration, len(kids))
		errs := make([]error, len(kids))
		t0 := time.Now()
		for i, c := range kids {
			wg.Go(func() { lats[i], errs[i] = roundTrips(c, per, window, argsLen, base+uint64(i*per)) })
		}
		wg.Wait()
		el := time.Since(t0)
		base += uint64(len(kids) * per)
		var all []time.Duration
		for i := range kids {
			if errs[i] != nil {
				return nil, 0, errs[i]
			}
			all = append(all, lats[i]...)
		}
		return all, el, nil
	}
	if _, _, err := runAll(warm); err != nil {
		return res, err
	}
	var rates, p50s, p99s []float64
	for range reps {
		lat, el, err := runAll(n)
		if err != nil {
			return res, err
		}
		slices.Sort(lat)
		rates = append(rates, float64(len(lat))/el.Seconds())
		p50s = append(p50s, us(percentile(lat, 50)))
		p99s = append(p99s, us(percentile(lat, 99)))
	}
	return pingPongResult{median(rates), median(p50s), median(p99s)}, nil
}

// execReady starts children ping-pong children at once and returns the
// time until every one has written its ready byte: exec of the harness's
// own binary, with no protocol on top.
func execReady(children int) (time.Duration, error) {
	t0 := time.Now()
	kids := make([]*ppChild, 0, children)
	defer func() {
		for _, c := range kids {
			c.stop()
		}
	}()
	for range children {
		c, err := startPingPong(nil, false, false)
		if err != nil {
			return 0, err
		}
		kids = append(kids, c)
	}
	for _, c := range kids {
		if err := c.waitReady(); err != nil {
			return 0, err
		}
	}
	return time.Since(t0), nil
}
