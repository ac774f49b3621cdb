package runner

import (
	"bytes"
	"io"
	"sync"
)

// prefixWriter writes whole lines to w, each with prefix; writers sharing
// mu never interleave within a line.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if p.w == nil {
		return len(b), nil
	}
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.mu.Lock()
		_, err := io.WriteString(p.w, p.prefix+string(p.buf[:i+1]))
		p.mu.Unlock()
		p.buf = p.buf[i+1:]
		if err != nil {
			return len(b), err
		}
	}
	return len(b), nil
}

// Flush writes a last line that had no newline.
func (p *prefixWriter) Flush() {
	if p.w == nil || len(p.buf) == 0 {
		return
	}
	p.mu.Lock()
	_, _ = io.WriteString(p.w, p.prefix+string(p.buf)+"\n")
	p.mu.Unlock()
	p.buf = nil
}
