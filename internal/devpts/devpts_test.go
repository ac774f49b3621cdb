package devpts

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestOpenRefuses: a root whose /dev/ptmx is missing, a link out of the
// root, a regular file or the host's devtmpfs node (not a devpts
// instance) gives no terminal. The real case (a running container) is in
// internal/hostuser's LXC test.
func TestOpenRefuses(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, root string)
		isErr error
	}{
		{"missing", func(t *testing.T, root string) {}, unix.ENOENT},
		{"link out of the root", func(t *testing.T, root string) {
			require.NoError(t, os.Symlink("/dev/pts/ptmx", filepath.Join(root, "dev/ptmx")))
		}, unix.ENOENT},
		{"a regular file", func(t *testing.T, root string) {
			require.NoError(t, os.WriteFile(filepath.Join(root, "dev/ptmx"), nil, 0o666))
		}, ErrNotPtmx},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			require.NoError(t, os.Mkdir(filepath.Join(root, "dev"), 0o755))
			c.setup(t, root)
			p, err := Open(root, -1, -1)
			if p != nil {
				p.Close()
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, c.isErr)
		})
	}
	// The host's /dev/ptmx is the devtmpfs node, not a devpts instance.
	if _, err := os.Stat("/dev/ptmx"); err == nil {
		p, err := Open("/", -1, -1)
		if p != nil {
			p.Close()
		}
		assert.True(t, errors.Is(err, ErrNotPtmx) || errors.Is(err, unix.EACCES), "%v", err)
	}
}
