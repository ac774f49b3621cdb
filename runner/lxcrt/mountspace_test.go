package lxcrt_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/container"
)

// TestBindPathsWithWhiteSpace: a bind source (and target) with a space or
// a tab works: LXC's mount entries are fstab lines, so white space is
// written octal-escaped (\040, \011), as getmntent reads it back.
func TestBindPathsWithWhiteSpace(t *testing.T) {
	f := newFixture(t, false)
	base := t.TempDir()
	require.NoError(t, os.Chmod(base, 0o755))
	src := filepath.Join(base, "my dir\twith tab")
	require.NoError(t, os.Mkdir(src, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "in.txt"), []byte("from host\n"), 0o644))
	f.start(t, "spaces", container.Config{
		Mounts: []container.Mount{
			{Type: "bind", Source: src, Target: "/src dir"},
			{Type: "bind", Source: src, Target: "/ro src", Readonly: true},
		},
	})
	out, st := f.sh(t, "spaces", "cat '/src dir/in.txt' '/ro src/in.txt'")
	require.True(t, st.Success(), out)
	assert.Equal(t, "from host\nfrom host\n", out)
}
