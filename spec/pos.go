package spec

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// BurntSushi/toml keeps key positions private (and collapses the elements of
// an array of tables into one key), so stint re-scans the source of a file
// that already parsed and records where every key path starts. Paths use the
// same notation as problems: dotted keys, "[i]" for array elements, e.g.
// job.test.mount[1].target.

// lineCol is a 1-based position in a file.
type lineCol struct{ line, col int }

// posScanner walks TOML source that BurntSushi/toml accepted; it is lenient
// because the input is known to be valid.
type posScanner struct {
	src  string
	i    int
	pos  map[string]lineCol
	aot  map[string]int // array-of-tables path -> index of its last element
	line int
	bol  int // byte offset where the current line begins
	// colAt and col cache the last column computed on this line, so that
	// here() counts runes from there: a long line costs linear time, not
	// quadratic (a 1 MiB array on one line).
	colAt, col int
}

// scanPositions maps every key path of a valid TOML document to where it starts.
func scanPositions(src string) map[string]lineCol {
	s := &posScanner{src: src, pos: map[string]lineCol{}, aot: map[string]int{}, line: 1}
	table := ""
	for {
		s.skipSpace(true)
		if s.i >= len(s.src) {
			return s.pos
		}
		here := s.here()
		switch {
		case strings.HasPrefix(s.src[s.i:], "[["):
			s.i += 2
			keys := s.keys()
			s.skipTo(']')
			s.i += 2
			if len(keys) == 0 {
				continue
			}
			// The last key names the array itself: not indexed.
			p := join(s.resolve(keys[:len(keys)-1], here), keys[len(keys)-1])
			n, ok := s.aot[p]
			if ok {
				n++
			}
			s.aot[p] = n
			table = p + "[" + strconv.Itoa(n) + "]"
			s.mark(p, here)
			s.mark(table, here)
		case s.src[s.i] == '[':
			s.i++
			keys := s.keys()
			s.skipTo(']')
			s.i++
			table = s.resolve(keys, here)
			s.mark(table, here)
		default:
			s.keyValue(table)
		}
	}
}

// resolve turns header keys into a path, indexing any array of tables on
// the way; it marks the (implicit) parents it passes at here.
func (s *posScanner) resolve(keys []string, here lineCol) string {
	p := ""
	for _, k := range keys {
		p = join(p, k)
		s.mark(p, here)
		if n, ok := s.aot[p]; ok {
			p += "[" + strconv.Itoa(n) + "]"
		}
	}
	return p
}

func (s *posScanner) here() lineCol {
	if s.colAt < s.bol || s.colAt > s.i {
		s.colAt, s.col = s.bol, 0
	}
	s.col += utf8.RuneCountInString(s.src[s.colAt:s.i])
	s.colAt = s.i
	return lineCol{s.line, s.col + 1}
}

// mark records the first position of a path (an implicit parent keeps the
// position of its first explicit child).
func (s *posScanner) mark(path string, at lineCol) {
	if _, ok := s.pos[path]; !ok {
		s.pos[path] = at
	}
}

func (s *posScanner) keyValue(table string) {
	here := s.here()
	keys := s.keys()
	p := table
	for _, k := range keys {
		p = join(p, k)
		s.mark(p, here)
	}
	s.skipSpace(false)
	if s.i < len(s.src) && s.src[s.i] == '=' {
		s.i++
	}
	s.skipSpace(false)
	s.value(p)
}

// keys reads a dotted key: bare, "basic" or 'literal' parts.
func (s *posScanner) keys() []string {
	var out []string
	for s.i < len(s.src) {
		s.skipSpace(false)
		if s.i >= len(s.src) {
			break
		}
		switch c := s.src[s.i]; {
		case c == '"' || c == '\'':
			out = append(out, s.str())
		default:
			j := s.i
			for j < len(s.src) && isBare(s.src[j]) {
				j++
			}
			out = append(out, s.src[s.i:j])
			s.i = j
		}
		s.skipSpace(false)
		if s.i < len(s.src) && s.src[s.i] == '.' {
			s.i++
			continue
		}
		break
	}
	return out
}

func isBare(c byte) bool {
	return c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// value skips one value, recording the keys of inline tables and the
// elements of arrays under path.
func (s *posScanner) value(path string) {
	if s.i >= len(s.src) {
		return
	}
	switch s.src[s.i] {
	case '"', '\'':
		s.str()
	case '{':
		s.i++
		for {
			s.skipSpace(true)
			if s.i >= len(s.src) {
				return
			}
			switch s.src[s.i] {
			case '}':
				s.i++
				return
			case ',':
				s.i++
				continue
			}
			s.keyValue(path)
		}
	case '[':
		s.i++
		for n := 0; ; {
			s.skipSpace(true)
			if s.i >= len(s.src) {
				return
			}
			switch s.src[s.i] {
			case ']':
				s.i++
				return
			case ',':
				s.i++
				continue
			}
			el := path + "[" + strconv.Itoa(n) + "]"
			s.mark(el, s.here())
			s.value(el)
			n++
		}
	default:
		start := s.i
		s.token()
		// A date-time may hold one space: 1979-05-27 07:32:00Z.
		if s.i-start == 10 && s.src[start+4] == '-' && s.i+1 < len(s.src) && s.src[s.i] == ' ' &&
			s.src[s.i+1] >= '0' && s.src[s.i+1] <= '9' {
			s.i++
			s.token()
		}
	}
}

// token skips a bare value: a number, boolean or date.
func (s *posScanner) token() {
	for s.i < len(s.src) && !strings.ContainsRune(",]}#\n \t\r", rune(s.src[s.i])) {
		s.i++
	}
}

// str reads a string of any of the four kinds and returns its content
// (escapes in basic strings are kept as written: good enough for key names).
func (s *posScanner) str() string {
	q := s.src[s.i]
	if strings.HasPrefix(s.src[s.i:], strings.Repeat(string(q), 3)) {
		s.i += 3
		start := s.i
		for s.i < len(s.src) {
			if q == '"' && s.src[s.i] == '\\' {
				s.i++
				if s.i < len(s.src) {
					s.advance() // the escaped byte may be a newline (line continuation)
				}
				continue
			}
			if strings.HasPrefix(s.src[s.i:], strings.Repeat(string(q), 3)) {
				// A closing delimiter may be followed by up to two more quotes.
				end := s.i
				s.i += 3
				for k := 0; k < 2 && s.i < len(s.src) && s.src[s.i] == q; k++ {
					s.i++
					end++
				}
				return s.src[start:end]
			}
			s.advance()
		}
		return s.src[start:]
	}
	s.i++
	start := s.i
	for s.i < len(s.src) && s.src[s.i] != q && s.src[s.i] != '\n' {
		if q == '"' && s.src[s.i] == '\\' {
			s.i++
		}
		s.i++
	}
	out := s.src[start:min(s.i, len(s.src))]
	s.i++
	if q == '"' {
		if u, err := strconv.Unquote(`"` + out + `"`); err == nil {
			return u
		}
	}
	return out
}

// advance moves one byte, keeping track of lines.
func (s *posScanner) advance() {
	if s.src[s.i] == '\n' {
		s.line++
		s.bol = s.i + 1
	}
	s.i++
}

// skipSpace skips blanks and comments, and newlines too when nl is set.
func (s *posScanner) skipSpace(nl bool) {
	for s.i < len(s.src) {
		switch c := s.src[s.i]; {
		case c == ' ' || c == '\t' || c == '\r':
			s.i++
		case c == '\n' && nl:
			s.advance()
		case c == '#':
			for s.i < len(s.src) && s.src[s.i] != '\n' {
				s.i++
			}
		default:
			return
		}
	}
}

func (s *posScanner) skipTo(c byte) {
	for s.i < len(s.src) && s.src[s.i] != c {
		s.advance()
	}
}

// join appends a key to a path, quoting a key that is not bare
// (raw."lxc.cap.drop", image.ci.files."/etc/motd").
func join(path, key string) string {
	for i := 0; i < len(key); i++ {
		if !isBare(key[i]) {
			key = strconv.Quote(key)
			break
		}
	}
	if key == "" {
		key = `""`
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// token returns the bare value (a number, boolean or date) written at a
// place, as written: 1.20, not the 1.2 it decodes to. Successive calls
// along one line resume where the last one stopped, so quoting every
// value of a long line costs linear time.
func (f *srcFile) token(a at) string {
	if f.lines == nil {
		f.lines = []int{0}
		for i := 0; i < len(f.src); i++ {
			if f.src[i] == '\n' {
				f.lines = append(f.lines, i+1)
			}
		}
	}
	if a.Line < 1 || a.Line > len(f.lines) || a.Col < 1 {
		return ""
	}
	c := &f.cursor
	if c.line != a.Line || c.col > a.Col {
		*c = tokenCursor{line: a.Line, col: 1, off: f.lines[a.Line-1]}
	}
	for c.col < a.Col && c.off < len(f.src) && f.src[c.off] != '\n' {
		_, n := utf8.DecodeRuneInString(f.src[c.off:])
		c.off += n
		c.col++
	}
	end := c.off
	for end < len(f.src) && !strings.ContainsRune(",]}#\n \t\r", rune(f.src[end])) {
		end++
	}
	return f.src[c.off:end]
}

// tokenCursor is where srcFile.token last stopped.
type tokenCursor struct{ line, col, off int }
