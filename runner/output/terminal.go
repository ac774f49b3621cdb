package output

import (
	"hash/fnv"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"
)

// palette holds the ANSI colours for job prefixes: readable on dark and
// light backgrounds, red left out (it reads as an error).
var palette = []string{"32", "33", "34", "35", "36", "92", "93", "94", "95", "96"}

// JobColor returns the stable ANSI colour code of a job name: the same job
// has the same colour in every run.
func JobColor(job string) string {
	h := fnv.New32a()
	h.Write([]byte(job))
	return palette[h.Sum32()%uint32(len(palette))]
}

// ColorFor reports whether output to w should be coloured: w is a terminal,
// NO_COLOR is unset and TERM is not "dumb".
func ColorFor(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	return os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}

// TerminalOptions configures a Terminal.
type TerminalOptions struct {
	Color bool // colour the prefixes (see ColorFor)
	Width int  // pad job names to this width, so the bars line up; 0: no padding
}

// Terminal is a Sink writing "job | line" lines for people. Each line is one
// Write under the Terminal's lock, so concurrent jobs never mix within a line.
type Terminal struct {
	mu   sync.Mutex
	w    io.Writer
	opts TerminalOptions
}

// NewTerminal returns a Terminal writing to w.
func NewTerminal(w io.Writer, opts TerminalOptions) *Terminal {
	return &Terminal{w: w, opts: opts}
}

// Line writes one prefixed line. Write errors are dropped: the user's
// terminal going away must not fail the job (the log file keeps the output).
func (t *Terminal) Line(job string, _ int, _ string, line string) {
	var b strings.Builder
	b.Grow(len(job) + len(line) + 16)
	if t.opts.Color {
		b.WriteString("\x1b[" + JobColor(job) + "m")
	}
	b.WriteString(job)
	for n := len(job); n < t.opts.Width; n++ {
		b.WriteByte(' ')
	}
	b.WriteString(" |")
	if t.opts.Color {
		b.WriteString("\x1b[0m")
	}
	if line != "" {
		b.WriteByte(' ')
		b.WriteString(line)
	}
	b.WriteByte('\n')
	t.mu.Lock()
	defer t.mu.Unlock()
	io.WriteString(t.w, b.String())
}
