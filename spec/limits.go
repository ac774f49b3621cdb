package spec

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Limits on input. A spec may come from a repository nobody here trusts (CI
// runs them), and BurntSushi/toml is quadratic in nesting depth, so every
// limit is checked before the cost it guards grows: the file size while
// reading, the nesting depth by a linear scan of the raw bytes before the
// TOML decoder sees them, the number of matrix variants by multiplying the
// value counts before expanding. Each is a Problem at file:line:col whose
// Limit names it; errors.Is(err, ErrLimit) tells them from other mistakes.
const (
	// DefaultMaxFileSize caps one spec file when Options.MaxFileSize is 0.
	DefaultMaxFileSize = 1 << 20
	// MaxDepth caps nesting: tables, inline tables, arrays and the parts
	// of dotted keys and [table.headers] that hold a value, counting the
	// document itself. The deepest key stint reads is at depth 6.
	MaxDepth = 32
	// MaxVariants caps the jobs one matrix expands to.
	MaxVariants = 1000
	// MaxJobs caps the jobs a whole set expands to, matrices included.
	MaxJobs = 10000
	// MaxRunLine caps one run line in bytes, as written and once ${...} is
	// substituted: it is handed to the shell as one argument, and the
	// kernel refuses an argument over 128 KiB (MAX_ARG_STRLEN).
	MaxRunLine = 64 << 10
	// MaxEnvValue caps one env value in bytes (MAX_ARG_STRLEN also applies
	// to each NAME=VALUE string of the environment).
	MaxEnvValue = 128 << 10
	// MaxExpanded caps what resolving a set's jobs and containers may
	// cost, in bytes: each job, matrix variant and container is its own
	// copy of the env, raw, mounts, artifacts and run lines of its layers
	// (a profile used 1,000 times is copied 1,000 times), counted at
	// expansionEntry bytes each but for the first copy of each table,
	// and of every string ${...} changes, counted at its longest. All
	// counted before anything is merged, expanded or substituted. Three
	// jobs of 1,000 variants with 30 entries each fit (resolving them
	// allocates under 20 MB; see TestBigSetFits).
	MaxExpanded = 16 << 20
	// MaxVariantName caps a matrix variant's name (test[go=1.22]) in
	// bytes: it names directories (artifacts, logs), and a file name is at
	// most 255 bytes.
	MaxVariantName = 255
)

// Limit names an input limit in a Problem.
type Limit string

// The limits, as Problem.Limit names them.
const (
	LimitFileSize    Limit = "file size"
	LimitDepth       Limit = "nesting depth"
	LimitVariants    Limit = "matrix variants"
	LimitJobs        Limit = "jobs per set"
	LimitRunLine     Limit = "run line"
	LimitEnvValue    Limit = "env value"
	LimitVariantName Limit = "variant name"
	LimitExpanded    Limit = "expanded jobs"
)

// ErrLimit is what a Problem with a Limit unwraps to, so that
// errors.Is(err, ErrLimit) holds for an error of Load that reports one.
var ErrLimit = errors.New("spec input limit exceeded")

func (o Options) maxFileSize() int64 {
	if o.MaxFileSize > 0 {
		return o.MaxFileSize
	}
	return DefaultMaxFileSize
}

// tomlDecode is the TOML decoder; a variable so that tests can count what
// reaches it.
var tomlDecode = func(src string, v any) error {
	_, err := toml.Decode(src, v)
	return err
}

// readCapped reads a file, at most limit bytes of it: a larger file is a
// problem at the place where it crosses the limit, and no more of it is read.
func readCapped(name string, limit int64) (string, *Problem) {
	f, err := os.Open(name)
	if err != nil {
		return "", &Problem{File: name, Msg: fmt.Sprintf("cannot read spec: %v", unwrapPathError(err))}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return "", &Problem{File: name, Msg: fmt.Sprintf("cannot read spec: %v", unwrapPathError(err))}
	}
	if int64(len(b)) <= limit {
		return string(b), nil
	}
	src := string(b[:limit])
	line := strings.Count(src, "\n") + 1
	bol := strings.LastIndexByte(src, '\n') + 1
	return "", &Problem{
		File: name, Line: line, Col: utf8.RuneCountInString(src[bol:]) + 1, Limit: LimitFileSize,
		Msg:  fmt.Sprintf("spec file is larger than the limit of %s", humanBytes(limit)),
		Hint: "split it into several files of one set",
	}
}

// humanBytes renders a limit: "1 MiB", "64 KiB", "1000 bytes".
func humanBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return plural(int(n), "byte")
}

// plural renders "1 job", "2 jobs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// Hints for strings over a limit.
const (
	runLineHint  = "put a long script in a file, mount it and run that"
	envValueHint = "pass large data in a mounted file"
)

// tooLong reports strings over a byte limit, as written.
func (ps *problems) tooLong(list []sv, what string, limit int, lim Limit, hint string) {
	for _, s := range list {
		if len(s.V) > limit {
			ps.add(Problem{
				File: s.At.File, Line: s.At.Line, Col: s.At.Col, Path: s.At.Path, Limit: lim, Hint: hint,
				Msg: fmt.Sprintf("%s is %s, over the limit of %s", what, plural(len(s.V), "byte"), humanBytes(int64(limit))),
			})
		}
	}
}

// tooLongSubstituted reports a string that is over a byte limit once
// ${...} is substituted, but was not as written. The message says no
// length: it is the same for every variant, and reported once.
func (ps *problems) tooLongSubstituted(s sv, got, what string, limit int, lim Limit, hint string) {
	if len(got) > limit && len(s.V) <= limit {
		ps.add(Problem{
			File: s.At.File, Line: s.At.Line, Col: s.At.Col, Path: s.At.Path, Limit: lim, Hint: hint,
			Msg: fmt.Sprintf("%s is over the limit of %s once ${...} is substituted", what, humanBytes(int64(limit))),
		})
	}
}

// variantCount is the number of jobs a matrix expands to: the product of
// its keys' value counts (keys without values are reported, and skipped),
// saturating at the largest uint64 rather than overflowing.
func variantCount(keys []matrixKey) (n uint64, saturated bool) {
	n = 1
	for _, k := range keys {
		if len(k.values) == 0 {
			continue
		}
		hi, lo := bits.Mul64(n, uint64(len(k.values)))
		if hi != 0 {
			return ^uint64(0), true
		}
		n = lo
	}
	return n, false
}

// longestVariantName is the length of a matrix's longest variant name,
// base[k1=v1,k2=v2], in bytes.
func longestVariantName(base string, keys []matrixKey) int {
	n, used := len(base)+2, 0 // base[]
	for _, k := range keys {
		longest := 0
		for _, v := range k.values {
			longest = max(longest, len(v.V))
		}
		if longest > 0 {
			n += len(k.name) + 1 + longest // k=v
			used++
		}
	}
	if used == 0 {
		return len(base)
	}
	return n + used - 1 // commas
}

// expansionEntry is what one entry of a job (an env or raw key, a mount,
// an artifact, a run line) counts for, and expansionJob a job itself.
const (
	expansionEntry = 128
	expansionJob   = 512
)

// expansion is what expanding a set's jobs has cost so far, against
// MaxExpanded.
type expansion struct {
	used   int64
	maxVal int  // the longest matrix value of the job being expanded
	over   bool // a substitution would have gone over: stop
}

// reserve counts a job's variants, or a container, before any is made or
// merged: each is at most every entry of its layers (profiles and its own
// table). The first copy of a layer is free (the file size bounds it);
// every further one counts. False when that would go over the limit.
func (x *expansion) reserve(ls []*layer, matrix []matrixKey) bool {
	n, _ := variantCount(matrix) // at most MaxVariants: checked before
	entries, free := int64(0), int64(0)
	for _, l := range ls {
		e := int64(len(l.env) + len(l.raw) + len(l.mounts) + len(l.artifacts) + len(l.run))
		entries += e
		if !l.counted {
			l.counted = true
			free += e
		}
	}
	cost := int64(n)*(expansionJob+entries*expansionEntry) - free*expansionEntry
	x.maxVal = 0
	for _, k := range matrix {
		for _, v := range k.values {
			x.maxVal = max(x.maxVal, len(v.V))
		}
	}
	if x.over || cost > MaxExpanded || x.used+cost > MaxExpanded {
		x.over = true
		return false
	}
	x.used += cost
	return true
}

// substitute counts the text substituting s may make, at most, before it
// is made: false when that would go over the limit.
func (x *expansion) substitute(s string, vars map[string]string) bool {
	if len(vars) == 0 || !strings.Contains(s, "${") {
		return !x.over
	}
	most := int64(len(s)) + int64(strings.Count(s, "${"))*int64(x.maxVal)
	if x.over || x.used+most > MaxExpanded {
		x.over = true
		return false
	}
	x.used += most
	return true
}

func (x *expansion) problem(l *layer) Problem {
	return Problem{
		File: l.At.File, Line: l.At.Line, Col: l.At.Col, Path: l.kind + "." + l.name, Limit: LimitExpanded,
		Msg: fmt.Sprintf("the set expands to more than %s here (each job, matrix variant and container copies its env, raw, mounts, artifacts, run lines and ${...} text, profiles' included), the limit per set",
			humanBytes(MaxExpanded)),
		Hint: "use fewer variants, or put what they share in a mounted file",
	}
}
