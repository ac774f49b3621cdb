package spec

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The example, word for word.
func TestEnvArrayHint(t *testing.T) {
	_, err := loadText(t, "[job.t]\nimage = \"busybox\"\nrun = \"true\"\nenv = [\"A=1\"]\n", Options{})
	var perr *Errors
	require.ErrorAs(t, err, &perr)
	require.Len(t, perr.Problems, 1)
	assert.Equal(t, "job.t.env", perr.Problems[0].Path)
	assert.Equal(t, "expected a table, got an array", perr.Problems[0].Msg)
	assert.Equal(t, `write env = { A = "1" }`, perr.Problems[0].Hint)
}

func TestTableHint(t *testing.T) {
	for _, c := range []struct {
		path string
		v    any
		want string
	}{
		{"job.t.env", []any{"A=1", "B = 2"}, `write env = { A = "1", B = " 2" }`},
		{"job.t.env", []any{"A"}, "write env = { KEY = VALUE, ... }, or a [job.t.env] table"},
		{"job.t.env", []any{}, "write env = { KEY = VALUE, ... }, or a [job.t.env] table"},
		{"job.t.env", []any{"A=1", 2}, "write env = { KEY = VALUE, ... }, or a [job.t.env] table"},
		{"job.t.raw", []any{"lxc.x=" + string(make([]byte, 50))}, `write raw = { "lxc.x" = "\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000..." }`},
		{"job.t.mount[0]", []any{"a=b"}, ""},
		{"job.t.limits", []map[string]any{{}}, "write [job.t.limits] (single brackets)"},
		{"job.t.env", "A=1", ""},
		{"job", []any{"a=1"}, `write job = { a = "1" }`},
	} {
		assert.Equal(t, c.want, tableHint(c.path, c.v), "%s %v", c.path, c.v)
	}
	assert.Equal(t, `"日本語日本語日本語日本語..."`, tomlQuote("日本語日本語日本語日本語日本語日本語"))
}
