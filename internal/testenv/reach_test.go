package testenv

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fatalTB records a Fatalf instead of ending the test.
type fatalTB struct {
	testing.TB
	fatal string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	panic(f)
}

func perm(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.Mode() & (fs.ModePerm | fs.ModeSticky)
}

// TestReachableOnlyAddsSearch: below the temporary directory only o+x is
// added (no bit removed, no mode set wholesale); the temporary directory
// itself and what is above it are never touched.
func TestReachableOnlyAddsSearch(t *testing.T) {
	tmp := t.TempDir()
	Reachable(t, tmp)                                      // under the real temporary directory, before TMPDIR moves
	require.NoError(t, os.Chmod(tmp, fs.ModeSticky|0o771)) // a /tmp-like sticky directory
	t.Setenv("TMPDIR", tmp)
	deep := filepath.Join(tmp, "a", "b")
	require.NoError(t, os.MkdirAll(deep, 0o700))
	require.NoError(t, os.Chmod(filepath.Join(tmp, "a"), 0o750))

	Reachable(t, deep)

	assert.Equal(t, fs.ModeSticky|0o771, perm(t, tmp), "the temporary directory was changed")
	assert.Equal(t, fs.FileMode(0o751), perm(t, filepath.Join(tmp, "a")))
	assert.Equal(t, fs.FileMode(0o701), perm(t, deep))
}

// TestReachableRefusesOutsideTemp: a directory not below the temporary
// directory (or the temporary directory itself) is refused, untouched.
func TestReachableRefusesOutsideTemp(t *testing.T) {
	tmp := t.TempDir()
	other := t.TempDir()
	require.NoError(t, os.Chmod(other, 0o700))
	t.Setenv("TMPDIR", tmp)
	for _, dir := range []string{tmp, other, filepath.Dir(tmp)} {
		before := perm(t, dir)
		tb := &fatalTB{TB: t}
		func() {
			defer func() {
				if r := recover(); r != nil && r != any(tb) {
					panic(r)
				}
			}()
			Reachable(tb, dir)
		}()
		assert.Contains(t, tb.fatal, "is not below the temporary directory", dir)
		assert.Equal(t, before, perm(t, dir), "%s was changed", dir)
	}
}
