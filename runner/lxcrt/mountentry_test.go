package lxcrt

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/container"
)

// TestMountEntryEscapes: white space and backslashes in mount paths are
// octal-escaped in the entry, as fstab (and LXC's getmntent) wants.
func TestMountEntryEscapes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), `a b\c`)
	require.NoError(t, os.Mkdir(dir, 0o755))
	got, err := mountEntry(container.Mount{Type: "bind", Source: dir, Target: "/x y"})
	require.NoError(t, err)
	assert.Equal(t, filepathEscaped(dir)+` x\040y none bind,create=dir 0 0`, got)
}

// filepathEscaped is dir as an fstab field, written out by hand.
func filepathEscaped(dir string) string {
	out := ""
	for _, r := range dir {
		switch r {
		case ' ':
			out += `\040`
		case '\\':
			out += `\134`
		default:
			out += string(r)
		}
	}
	return out
}
