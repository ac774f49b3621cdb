package spec

import (
	"fmt"
	"sort"
	"strconv"
	"time"
)

// The decoder walks the generic map BurntSushi/toml produced, checking every
// key and type by hand: decoding into structs would stop at the first type
// error and lose the position of keys inside arrays of tables.

// srcFile is one parsed spec file.
type srcFile struct {
	name  string // as the user named it (directory entries joined to the directory)
	abs   string
	dir   string // absolute directory: relative host paths start here
	index int    // load order
	src   string // the text, for quoting what was written in hints
	pos   map[string]lineCol
	// lines and cursor serve token: where each line starts, and where
	// the last token was found.
	lines  []int
	cursor tokenCursor
	data   map[string]any
}

// at returns the place of path, falling back to its nearest parent with a
// known position.
func (f *srcFile) at(path string) at {
	for p := path; ; p = parentPath(p) {
		if lc, ok := f.pos[p]; ok {
			return at{File: f.name, Line: lc.line, Col: lc.col, Path: path}
		}
		if p == "" {
			return at{File: f.name, Path: path}
		}
	}
}

// parentPath strips the last key or index of a path (quote-aware).
func parentPath(p string) string {
	cut, inQuote := 0, false
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case (c == '.' || c == '[') && !inQuote:
			cut = i
		}
	}
	return p[:cut]
}

// val is a decoded value with the place it was written.
type val[T any] struct {
	V  T
	At at
}

type sv = val[string]

type decoder struct {
	f  *srcFile
	ps *problems
}

func (d *decoder) at(path string) at { return d.f.at(path) }

func (d *decoder) problem(path, hint, format string, args ...any) {
	d.ps.addf(d.at(path), hint, format, args...)
}

// typeName names a decoded TOML value's type for messages.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	default:
		return "a date/time"
	}
}

func (d *decoder) wrongType(path, want string, v any) {
	d.problem(path, "", "expected %s, got %s", want, typeName(v))
}

// table checks that v is a table; for an array, the hint shows the table
// form of what was written (env = ["A=1"]: write env = { A = "1" }).
func (d *decoder) table(v any, path string) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		d.problem(path, tableHint(path, v), "expected a table, got %s", typeName(v))
	}
	return m, ok
}

// each calls fn for every key of m in sorted order, reporting keys not in valid.
func (d *decoder) each(m map[string]any, path string, valid []string, fn func(k string, v any, path string)) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := join(path, k)
		if valid != nil && !contains(valid, k) {
			d.problem(p, keyHint(k, valid), "unknown key")
			continue
		}
		fn(k, m[k], p)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (d *decoder) str(v any, path string) (sv, bool) {
	s, ok := v.(string)
	if !ok {
		d.wrongType(path, "a string", v)
		return sv{}, false
	}
	return sv{V: s, At: d.at(path)}, true
}

// scalar accepts a string, integer, float or boolean as a string (env
// values, raw keys, properties, matrix values).
func (d *decoder) scalar(v any, path string) (sv, bool) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case int64:
		s = strconv.FormatInt(x, 10)
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		s = strconv.FormatBool(x)
	default:
		d.wrongType(path, "a string, number or boolean", v)
		return sv{}, false
	}
	return sv{V: s, At: d.at(path)}, true
}

// strList decodes an array of strings; one bare string is accepted when one is set.
func (d *decoder) strList(v any, path string, one bool) ([]sv, bool) {
	if s, ok := v.(string); ok && one {
		return []sv{{V: s, At: d.at(path)}}, true
	}
	arr, ok := v.([]any)
	if !ok {
		want := "an array of strings"
		if one {
			want = "a string or an array of strings"
		}
		d.wrongType(path, want, v)
		return nil, false
	}
	out := make([]sv, 0, len(arr))
	good := true
	for i, e := range arr {
		s, ok := d.str(e, path+"["+strconv.Itoa(i)+"]")
		good = good && ok
		if ok { // a bad element is reported here, not again downstream
			out = append(out, s)
		}
	}
	return out, good
}

// strMap decodes a table of scalars.
func (d *decoder) strMap(v any, path string) map[string]sv {
	m, ok := d.table(v, path)
	if !ok {
		return nil
	}
	out := map[string]sv{}
	d.each(m, path, nil, func(k string, v any, p string) {
		if s, ok := d.scalar(v, p); ok {
			out[k] = s
		}
	})
	return out
}

func (d *decoder) boolean(v any, path string) *val[bool] {
	b, ok := v.(bool)
	if !ok {
		d.wrongType(path, "a boolean", v)
		return nil
	}
	return &val[bool]{V: b, At: d.at(path)}
}

func (d *decoder) duration(v any, path string) *val[time.Duration] {
	s, ok := v.(string)
	if !ok {
		d.problem(path, durationHint, "expected a duration (string), got %s", typeName(v))
		return nil
	}
	t, err := parseDuration(s)
	if err != nil {
		d.problem(path, durationHint, "%v", err)
		return nil
	}
	return &val[time.Duration]{V: t, At: d.at(path)}
}

// size accepts a humane size string or an integer number of bytes.
func (d *decoder) size(v any, path string) *val[int64] {
	switch x := v.(type) {
	case int64:
		if x <= 0 {
			d.problem(path, sizeHint, "size must be positive")
			return nil
		}
		return &val[int64]{V: x, At: d.at(path)}
	case string:
		n, err := ParseSize(x)
		if err != nil {
			d.problem(path, sizeHint, "%v", err)
			return nil
		}
		return &val[int64]{V: n, At: d.at(path)}
	default:
		d.wrongType(path, "a size (string) or a number of bytes", v)
		return nil
	}
}

// enum decodes a string that must be one of values.
func (d *decoder) enum(v any, path string, values ...string) (sv, bool) {
	s, ok := d.str(v, path)
	if !ok {
		return s, false
	}
	if !contains(values, s.V) {
		hint := suggest(s.V, values)
		if hint == "" {
			hint = fmt.Sprintf("one of %s", quoteList(values))
		}
		d.problem(path, hint, "bad value %q", s.V)
		return s, false
	}
	return s, true
}

func quoteList(vs []string) string {
	out := ""
	for i, v := range vs {
		if i > 0 {
			out += ", "
		}
		out += strconv.Quote(v)
	}
	return out
}

// tables decodes a list of tables: an array of tables ([[x]]) or an inline
// array of tables (x = [{...}]).
func (d *decoder) tables(v any, path string) []map[string]any {
	switch x := v.(type) {
	case []map[string]any:
		return x
	case []any:
		out := make([]map[string]any, 0, len(x))
		for i, e := range x {
			m, ok := d.table(e, path+"["+strconv.Itoa(i)+"]")
			if !ok {
				return nil
			}
			out = append(out, m)
		}
		return out
	case map[string]any:
		d.problem(path, "write [["+path+"]] (double brackets) for each entry", "expected an array of tables, got a table")
	default:
		d.wrongType(path, "an array of tables", v)
	}
	return nil
}
