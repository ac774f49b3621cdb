package spec

import (
	"regexp"
	"sync"
)

// lazyRegexp is a package-level expression compiled on first use, not at
// program start (internal/lazyre explains why; spec imports nothing of
// stint's own, so it has this small copy).
type lazyRegexp struct{ get func() *regexp.Regexp }

func lazyRE(expr string) *lazyRegexp {
	return &lazyRegexp{get: sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })}
}

func (r *lazyRegexp) MatchString(s string) bool { return r.get().MatchString(s) }

func (r *lazyRegexp) ReplaceAllString(src, repl string) string {
	return r.get().ReplaceAllString(src, repl)
}
