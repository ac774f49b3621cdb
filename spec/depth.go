package spec

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// BurntSushi/toml takes time and memory quadratic in nesting depth (10,000
// inline tables deep: 14 s and 4 GB), so a file is scanned for its depth,
// in one linear pass over the raw bytes, before the decoder sees it.
//
// The depth of a value is the number of tables and arrays around it, the
// document included, the same as the depth of the tree the decoder would
// build: x = 1 is at depth 1, [a.b] c.d = [{}] puts the inline table at
// depth 6. It grows with each part of a [table] or [[array]] header (and by
// one more for each array of tables on the way), each part of a dotted key
// before the last, and each { or [ of a value. Strings and comments do not
// count: a { in "a{b" is text. The scanner is lenient (the decoder reports
// syntax errors); what it must never do is count less than the decoder
// would nest.

// depthScanner is the state of one scan.
type depthScanner struct {
	src   string
	i     int
	line  int
	bol   int // byte offset where the current line begins
	limit int

	aot    map[string]bool // headers written as [[x]], parts joined by NUL
	header int             // depth added by the current [table] header
	keyTop int             // dots of the current top-level key
	stack  []depthFrame    // open inline tables and arrays
	keySum int             // dots of the keys being written in all open frames
}

type depthFrame struct {
	table bool // { (keys and values) or [ (values)
	dots  int  // table: dots of the key being written
}

func (s *depthScanner) depth() int { return 1 + s.header + s.keyTop + len(s.stack) + s.keySum }

func (s *depthScanner) here() lineCol {
	return lineCol{s.line, utf8.RuneCountInString(s.src[s.bol:min(s.i, len(s.src))]) + 1}
}

// scanDepth returns where src first nests deeper than limit, or ok when it
// never does.
func scanDepth(src string, limit int) (where lineCol, ok bool) {
	s := &depthScanner{src: src, line: 1, limit: limit, aot: map[string]bool{}}
	lineStart, inKey := true, false
	for s.i < len(s.src) {
		c := s.src[s.i]
		switch c {
		case '\n':
			s.newline()
			if len(s.stack) == 0 {
				lineStart, inKey, s.keyTop = true, false, 0
			}
			continue
		case ' ', '\t', '\r':
			s.i++
			continue
		case '#':
			for s.i < len(s.src) && s.src[s.i] != '\n' {
				s.i++
			}
			continue
		}
		if lineStart && len(s.stack) == 0 {
			lineStart = false
			if c == '[' {
				if !s.tableHeader() {
					return s.here(), false
				}
				continue
			}
			inKey = true
		}
		if c == '"' || c == '\'' {
			s.str()
			continue
		}
		switch c {
		case '.':
			if !inKey {
				break
			}
			if n := len(s.stack); n > 0 {
				s.stack[n-1].dots++
				s.keySum++
			} else {
				s.keyTop++
			}
		case '=':
			inKey = false
		case '{', '[':
			s.stack = append(s.stack, depthFrame{table: c == '{'})
			inKey = c == '{'
		case '}', ']':
			if n := len(s.stack); n > 0 {
				s.keySum -= s.stack[n-1].dots
				s.stack = s.stack[:n-1]
			}
			inKey = false
		case ',':
			if n := len(s.stack); n > 0 && s.stack[n-1].table {
				s.keySum -= s.stack[n-1].dots
				s.stack[n-1].dots = 0
				inKey = true
			}
		}
		if s.depth() > s.limit {
			return s.here(), false
		}
		s.i++
	}
	return lineCol{}, true
}

// tableHeader reads a [table] or [[array]] header at s.i, setting its
// depth; false when that is over the limit (s.i then at the part that is).
func (s *depthScanner) tableHeader() bool {
	s.i++
	array := s.i < len(s.src) && s.src[s.i] == '['
	if array {
		s.i++
	}
	s.header = 0
	path := ""
	for parts := 0; ; parts++ {
		s.skipBlank()
		if s.i >= len(s.src) || s.src[s.i] == ']' || s.src[s.i] == '\n' {
			break
		}
		if parts > 0 {
			if s.src[s.i] != '.' {
				break
			}
			s.i++
			s.skipBlank()
		}
		if s.aot[path] && parts > 0 {
			s.header++ // into the last table of an array of tables
		}
		s.header++
		if s.depth()+b2i(array) > s.limit {
			return false
		}
		path += "\x00" + s.key()
	}
	if array {
		s.aot[path] = true
		s.header++
	}
	for s.i < len(s.src) && s.src[s.i] == ']' {
		s.i++
	}
	return true
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// key reads one part of a dotted key: bare, "basic" or 'literal'.
func (s *depthScanner) key() string {
	if s.i < len(s.src) && (s.src[s.i] == '"' || s.src[s.i] == '\'') {
		return s.str()
	}
	j := s.i
	for j < len(s.src) && isBare(s.src[j]) {
		j++
	}
	k := s.src[s.i:j]
	if j == s.i && j < len(s.src) && s.src[j] != '\n' {
		j++ // not a key: step over it (the decoder will say what is wrong)
	}
	s.i = j
	return k
}

func (s *depthScanner) skipBlank() {
	for s.i < len(s.src) && (s.src[s.i] == ' ' || s.src[s.i] == '\t') {
		s.i++
	}
}

func (s *depthScanner) newline() {
	s.i++
	s.line++
	s.bol = s.i
}

// str skips a string of any of the four kinds at s.i and returns its
// content (basic strings unescaped where Go reads the escapes the same).
// A single-line string ends at a newline even when it is not closed.
func (s *depthScanner) str() string {
	q := s.src[s.i]
	delim := strings.Repeat(string(q), 3)
	if strings.HasPrefix(s.src[s.i:], delim) {
		s.i += 3
		for s.i < len(s.src) {
			switch {
			case q == '"' && s.src[s.i] == '\\':
				s.i++
				if s.i < len(s.src) && s.src[s.i] == '\n' {
					s.newline()
				} else {
					s.i++
				}
			case strings.HasPrefix(s.src[s.i:], delim):
				// A closing delimiter may be followed by up to two more quotes.
				s.i += 3
				for k := 0; k < 2 && s.i < len(s.src) && s.src[s.i] == q; k++ {
					s.i++
				}
				return ""
			case s.src[s.i] == '\n':
				s.newline()
			default:
				s.i++
			}
		}
		return ""
	}
	s.i++
	start := s.i
	for s.i < len(s.src) && s.src[s.i] != q && s.src[s.i] != '\n' {
		if q == '"' && s.src[s.i] == '\\' && s.i+1 < len(s.src) && s.src[s.i+1] != '\n' {
			s.i++
		}
		s.i++
	}
	out := s.src[start:s.i]
	if s.i < len(s.src) && s.src[s.i] == q {
		s.i++
	}
	if q == '"' {
		// TOML 1.1 has \e, Go does not; a key read differently here than by
		// the decoder could only hide an array of tables on the way.
		if u, err := strconv.Unquote(`"` + escapeE(out) + `"`); err == nil {
			return u
		}
	}
	return out
}

// escapeE rewrites TOML's \e escapes as \x1b, leaving \\e (a backslash, then e) alone.
func escapeE(s string) string {
	if !strings.Contains(s, `\e`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == 'e':
			b.WriteString(`\x1b`)
			i++
		case s[i] == '\\' && i+1 < len(s):
			b.WriteString(s[i : i+2])
			i++
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
