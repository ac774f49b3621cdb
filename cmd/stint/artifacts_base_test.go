package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCLIArtifactsBaseSwapped: a job that can write the directory holding
// ./artifacts (a writable bind mount of the workspace, as CI jobs have)
// replaces ./artifacts with a symlink to a host directory. Artifacts still
// land in the directory stint opened before the job ran, never through the
// link.
func TestCLIArtifactsBaseSwapped(t *testing.T) {
	f := newCLI(t)
	require.NoError(t, os.Chmod(f.dir, 0o777)) // the container's root may rename entries in it
	victim := t.TempDir()
	p := f.spec(t, `
[job.swap]
image = "busybox"
run = [
  "mv /ws/artifacts /ws/moved && ln -s `+victim+` /ws/artifacts",
  "mkdir -p /out && echo data > /out/file",
]
[[job.swap.mount]]
source = "."
target = "/ws"
[[job.swap.artifact]]
path = "/out/file"
`)
	out, code := f.run(t, "run", p)
	require.Equal(t, 0, code, out)

	ents, err := os.ReadDir(victim)
	require.NoError(t, err)
	assert.Empty(t, ents, "nothing written through the planted symlink")
	got, err := os.ReadFile(filepath.Join(f.dir, "moved", "swap", "file"))
	require.NoError(t, err, "the artifact is in the directory stint opened, wherever the job moved it")
	assert.Equal(t, "data\n", string(got))
	f.assertClean(t)
}
