package tasks

import (
	"context"
	"io"
)

type protocolStreamKey struct{}

// WithProtocolStream returns a copy of ctx carrying w, the worker's private
// protocol stream. The worker's serve loop puts it there; only the "crash"
// task's "protocol" mode uses it, to break the protocol on purpose. w must
// accept a Write from the task's goroutine.
func WithProtocolStream(ctx context.Context, w io.Writer) context.Context {
	return context.WithValue(ctx, protocolStreamKey{}, w)
}

// ProtocolStream returns the writer that [WithProtocolStream] put in ctx, or
// nil if there is none.
func ProtocolStream(ctx context.Context) io.Writer {
	w, _ := ctx.Value(protocolStreamKey{}).(io.Writer)
	return w
}
