package runner

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// A recipe build's output (its packages, hooks and files steps) goes to its
// build log, <LogDir>/<build container>.log (stint-image-NAME-XXXXXXXX.log),
// and to Runner.BuildOutput only when that is set (the CLI's -v): a
// failure then names the log and carries its last lines (BuildLogError).

// tailLines is how many of a failed build's last lines its error shows.
const tailLines = 20

// maxTailLine caps one kept line: the rest of it is in the log.
const maxTailLine = 512

// BuildLogError is a recipe build step that failed (Err: a *HookError, a
// package manager's status), with the build log that has its whole output
// and, when that output was not streamed, the log's last lines.
type BuildLogError struct {
	Err  error
	Log  string   // the build log's path; "" without a log directory
	Tail []string // its last lines, oldest first; nil when streamed
}

func (e *BuildLogError) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	if e.Log != "" {
		fmt.Fprintf(&b, "; build log: %s", e.Log)
	}
	if len(e.Tail) > 0 {
		b.WriteString(", ending:")
		for _, l := range e.Tail {
			b.WriteString("\n    | " + l)
		}
	}
	return b.String()
}

func (e *BuildLogError) Unwrap() error { return e.Err }

// tailWriter keeps the last tailLines lines written to it, as a terminal
// would show them: text after a '\r' starts the line over (apt's progress).
type tailWriter struct {
	mu    sync.Mutex
	lines []string
	cur   []byte
	cr    bool // a '\r' ended the text in cur
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range p {
		switch c {
		case '\n':
			t.push()
		case '\r':
			t.cr = true
		default:
			if t.cr { // text after a '\r' redraws the line
				t.cur, t.cr = t.cur[:0], false
			}
			if len(t.cur) < maxTailLine {
				t.cur = append(t.cur, c)
			}
		}
	}
	return len(p), nil
}

func (t *tailWriter) push() {
	t.lines = append(t.lines, string(bytes.TrimRight(t.cur, " \t")))
	if len(t.lines) > tailLines {
		t.lines = slices.Delete(t.lines, 0, len(t.lines)-tailLines)
	}
	t.cur, t.cr = t.cur[:0], false
}

// Tail returns the last lines, a pending partial one included.
func (t *tailWriter) Tail() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.cur) > 0 {
		t.push()
	}
	return slices.Clone(t.lines)
}
