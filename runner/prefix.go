package runner

import (
	"bytes"
	"io"
	"sync"
)

// maxPending caps a pending partial line (see prefixWriter).
const maxPending = 64 << 10

// prefixWriter writes whole lines to w, each with prefix; writers sharing
// mu never interleave within a line. A line ends at '\n' or '\r' (so that
// progress output redrawn with '\r' streams; "\r\n" is one end), and is
// written with '\n'. A line longer than maxPending goes out in pieces of
// that size: a job printing without newlines must not grow stint's memory.
// The job's log gets the raw bytes elsewhere; this is the terminal's view.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte // the pending partial line, at most maxPending bytes
	cr     bool   // the last line ended with '\r': a '\n' right after it is its end too
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if p.w == nil {
		return len(b), nil
	}
	n := len(b)
	if p.buf == nil {
		p.buf = make([]byte, 0, maxPending) // never grows: appends stop at the cap
	}
	for len(b) > 0 {
		if p.cr && b[0] == '\n' {
			b = b[1:]
			p.cr = false
			continue
		}
		p.cr = false
		end := bytes.IndexAny(b, "\r\n")
		if end < 0 {
			end = len(b)
		}
		take := min(end, maxPending-len(p.buf))
		p.buf = append(p.buf, b[:take]...)
		b = b[take:]
		switch {
		case take == end && len(b) > 0: // at a line end
			p.cr = b[0] == '\r'
			b = b[1:]
		case len(p.buf) < maxPending:
			continue // b is used up; the line waits for its end
		}
		if err := p.line(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// line writes the pending line and empties it.
func (p *prefixWriter) line() error {
	p.mu.Lock()
	_, err := io.WriteString(p.w, p.prefix+string(p.buf)+"\n")
	p.mu.Unlock()
	p.buf = p.buf[:0]
	return err
}

// Flush writes a last line that had no newline.
func (p *prefixWriter) Flush() {
	p.cr = false
	if p.w == nil || len(p.buf) == 0 {
		return
	}
	_ = p.line()
}
