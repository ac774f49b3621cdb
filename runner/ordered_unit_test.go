package runner

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/storage"
)

// namedDriver and pathRuntime answer only what sameFilesystem asks.
type namedDriver struct {
	storage.Driver
	name string
}

func (d namedDriver) Name() string { return d.name }

type pathRuntime struct {
	container.Runtime
	path string
}

func (r pathRuntime) LXCPath() string { return r.path }

// A job's record skips its fsyncs only when the journal, the LXC path and
// the golden volume share a mount and the driver keeps clones in the
// pool's own filesystem.
func TestSameFilesystem(t *testing.T) {
	root := t.TempDir()
	st, err := state.Open(filepath.Join(root, "state"))
	require.NoError(t, err)
	lxcpath, golden := filepath.Join(root, "containers"), filepath.Join(root, "storage", "g", "rootfs")
	require.NoError(t, os.MkdirAll(lxcpath, 0o755))
	require.NoError(t, os.MkdirAll(golden, 0o755))
	for _, tc := range []struct {
		driver, lxcpath, golden string
		want                    bool
	}{
		{"btrfs", lxcpath, golden, true},
		{"overlay", lxcpath, golden, true},
		{"dir", lxcpath, golden, true},
		{"zfs", lxcpath, golden, false},
		{"lvm", lxcpath, golden, false},
		{"btrfs", lxcpath, "/proc", false}, // a pool mounted apart
		{"btrfs", "/proc", golden, false},
		{"btrfs", lxcpath, filepath.Join(root, "missing"), false},
	} {
		r := &Runner{Storage: namedDriver{name: tc.driver}, State: st, Runtime: pathRuntime{path: tc.lxcpath}}
		assert.Equal(t, tc.want, r.sameFilesystem(tc.golden), "%+v", tc)
	}
	// A runtime without an LXC path (not local LXC): never.
	r := &Runner{Storage: namedDriver{name: "btrfs"}, State: st, Runtime: struct{ container.Runtime }{}}
	assert.False(t, r.sameFilesystem(golden))
}
