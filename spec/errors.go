package spec

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/go-multierror"
)

// ErrUnknownJob is wrapped by SelectJobs when a name selects no job.
var ErrUnknownJob = errors.New("unknown job")

// Problem is one thing wrong with a spec, where it was written and, where one
// helps, a hint (a did-you-mean, the expected form).
type Problem struct {
	File string `json:"file"`           // the spec file as the user named it (relative if they gave a relative path)
	Line int    `json:"line,omitempty"` // 1-based; 0 when the problem concerns the whole file
	Col  int    `json:"col,omitempty"`  // 1-based; 0 when unknown
	Path string `json:"path,omitempty"` // the key path, e.g. job.test.mount[1].target; "" for a syntax error
	Msg  string `json:"msg"`            // what is wrong
	Hint string `json:"hint,omitempty"` // optional
	// Limit names the input limit the spec is over (LimitDepth, ...); ""
	// for every other problem.
	Limit Limit `json:"limit,omitempty"`
}

// String renders "file:line:col: key.path: what is wrong; hint".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Col > 0 {
			fmt.Fprintf(&b, ":%d", p.Col)
		}
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	if p.Hint != "" {
		b.WriteString("; " + p.Hint)
	}
	return b.String()
}

// Error makes a Problem usable on its own as an error.
func (p Problem) Error() string { return p.String() }

// Unwrap is ErrLimit for a problem with a Limit, nil otherwise.
func (p Problem) Unwrap() error {
	if p.Limit != "" {
		return ErrLimit
	}
	return nil
}

// Errors is every problem of a spec set, sorted by file, line and column.
// Load returns it (as *Errors) for any invalid input; detect it with errors.As.
type Errors struct {
	Problems []Problem `json:"problems"`
}

// Error lists one problem per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, so that errors.Is(err, ErrLimit) finds
// one that is over a limit.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// Multi returns the problems as a go-multierror, for callers that combine
// them with other errors.
func (e *Errors) Multi() *multierror.Error {
	var m *multierror.Error
	for _, p := range e.Problems {
		m = multierror.Append(m, p)
	}
	return m
}

// problems collects Problems, dropping exact duplicates (a problem in a
// profile shows once however many jobs and matrix variants use it).
type problems struct {
	list []Problem
	seen map[Problem]bool
}

func (ps *problems) add(p Problem) {
	if ps.seen == nil {
		ps.seen = map[Problem]bool{}
	}
	if ps.seen[p] {
		return
	}
	ps.seen[p] = true
	ps.list = append(ps.list, p)
}

// addf records a problem at a place.
func (ps *problems) addf(a at, hint, format string, args ...any) {
	ps.add(Problem{File: a.File, Line: a.Line, Col: a.Col, Path: a.Path, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// err returns nil, or *Errors with the problems sorted.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	out := append([]Problem(nil), ps.list...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Msg < b.Msg
	})
	return &Errors{Problems: out}
}

// at is where a value was written: its file (as named by the user), line,
// column and key path.
type at struct {
	File string
	Line int
	Col  int
	Path string
}
