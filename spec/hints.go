package spec

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Hints that show the right form of what was written.

// tableHint shows the table form of an array written where a table
// belongs: env = ["A=1", "B=2"] becomes write env = { A = "1", B = "2" }.
func tableHint(path string, v any) string {
	key := path
	if parent := parentPath(path); parent != "" {
		key = path[len(parent)+1:]
	}
	if key == "" || strings.HasSuffix(key, "]") {
		return "" // an element of an array: the array's own hint says more
	}
	switch x := v.(type) {
	case []map[string]any:
		return "write [" + path + "] (single brackets)"
	case []any:
		if pairs, ok := keyValues(x, key == "matrix"); ok {
			return "write " + key + " = { " + pairs + " }"
		}
		return "write " + key + " = { KEY = VALUE, ... }, or a [" + path + "] table"
	}
	return ""
}

// keyValues renders NAME=VALUE strings as TOML pairs, the first three of
// them (a value in a list when list is set: a matrix); ok is false unless
// every element is such a string.
func keyValues(arr []any, list bool) (string, bool) {
	if len(arr) == 0 {
		return "", false
	}
	var pairs []string
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return "", false
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return "", false
		}
		if i < 3 {
			q := tomlQuote(v)
			if list {
				q = "[" + q + "]"
			}
			pairs = append(pairs, join("", strings.TrimSpace(k))+" = "+q)
		}
	}
	if len(arr) > 3 {
		pairs = append(pairs, "...")
	}
	return strings.Join(pairs, ", "), true
}

// tomlQuote writes s as a TOML basic string.
func tomlQuote(s string) string {
	if len(s) > 40 {
		s = s[:37]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// jobHint is " (did you mean "test"?)" for a job name close to a job's
// name or base name in set, or "".
func jobHint(set *Set, name string) string {
	var names []string
	for _, j := range set.Jobs {
		names = append(names, j.Base)
		if j.Name != j.Base {
			names = append(names, j.Name)
		}
	}
	if s := suggest(name, names); s != "" {
		return " (" + s + ")"
	}
	return ""
}
