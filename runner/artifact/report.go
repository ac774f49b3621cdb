package artifact

import (
	"fmt"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/stintdev/stint/internal/plural"
)

// Files is the number of regular files copied (Copied less its links).
func (r Result) Files() int { return len(r.Copied) - len(r.Links) }

// Summary says in one line what Collect did: "2 files, 1 link, 9 B",
// then "; 1 pattern matched nothing" and "; 2 skipped" when so.
func (r Result) Summary() string {
	parts := []string{plural.N(r.Files(), "file", "files")}
	if len(r.Links) > 0 {
		parts = append(parts, plural.N(len(r.Links), "link", "links"))
	}
	s := strings.Join(append(parts, humanize.IBytes(uint64(r.Bytes))), ", ")
	if n := r.nothing(); n > 0 {
		s += "; " + plural.N(n, "pattern", "patterns") + " " + MatchedNothing
	}
	if n := len(r.Skipped) - r.nothing(); n > 0 {
		s += fmt.Sprintf("; %d skipped", n)
	}
	return s
}

func (r Result) nothing() int {
	n := 0
	for _, s := range r.Skipped {
		if s.Reason == MatchedNothing {
			n++
		}
	}
	return n
}

// Details is one line per link kept ("link /out/latest -> v1.tar.gz"),
// pattern that matched nothing ("matched nothing: /dist/*.whl") and entry
// skipped ("skipped /out/fifo: fifo: not copied"), in that order.
func (r Result) Details() []string {
	var out []string
	for _, l := range r.Links {
		out = append(out, fmt.Sprintf("link %s -> %s", l.Path, l.Target))
	}
	for _, s := range r.Skipped {
		if s.Reason == MatchedNothing {
			out = append(out, MatchedNothing+": "+s.Path)
		}
	}
	for _, s := range r.Skipped {
		if s.Reason != MatchedNothing {
			out = append(out, fmt.Sprintf("skipped %s: %s", s.Path, s.Reason))
		}
	}
	return out
}

// Empty reports whether Collect had nothing to say: nothing wanted.
func (r Result) Empty() bool { return len(r.Copied) == 0 && len(r.Skipped) == 0 }
