// Package lazyre holds package-level regular expressions compiled on first
// use instead of at program start: stint runs as one short process per
// command, and compiling every package's expressions at init (counted
// repetitions such as {0,127} expand into large programs) cost about a
// millisecond of each `stint run`, most of it for expressions the command
// never uses.
package lazyre

import (
	"regexp"
	"sync"
)

// Regexp is a regular expression compiled on first use; New's expression
// must compile (as regexp.MustCompile's, a bad one panics, on first use).
type Regexp struct {
	get func() *regexp.Regexp
}

// New returns the lazily compiled expr.
func New(expr string) *Regexp {
	return &Regexp{get: sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })}
}

// Get returns the compiled expression.
func (r *Regexp) Get() *regexp.Regexp { return r.get() }

// MatchString is regexp.Regexp.MatchString.
func (r *Regexp) MatchString(s string) bool { return r.get().MatchString(s) }

// ReplaceAllString is regexp.Regexp.ReplaceAllString.
func (r *Regexp) ReplaceAllString(src, repl string) string {
	return r.get().ReplaceAllString(src, repl)
}

// FindStringSubmatch is regexp.Regexp.FindStringSubmatch.
func (r *Regexp) FindStringSubmatch(s string) []string { return r.get().FindStringSubmatch(s) }

// String returns the source text.
func (r *Regexp) String() string { return r.get().String() }
