package ipc

// MaxFrame is the frame-size cap of this Writer.
func (w *Writer) MaxFrame() int { return w.max }
