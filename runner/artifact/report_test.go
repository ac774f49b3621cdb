package artifact

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/spec"
)

// TestLocalAndFSAgree: the two sources share one copier, so the same tree
// gives the same report (copied, links, skipped with the same reasons,
// bytes) read through descriptors or through an fs.FS.
func TestLocalAndFSAgree(t *testing.T) {
	root := filepath.Join(t.TempDir(), "rootfs")
	mkfile(t, filepath.Join(root, "out/a.txt"), "alpha", 0o644)
	mkfile(t, filepath.Join(root, "out/sub/b.txt"), "beta", 0o600)
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(root, "out/link")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(root, "out/fifo"), 0o644))
	arts := []spec.Artifact{{Path: "/out"}, {Path: "/none/*.log"}, {Path: "/missing.txt"}, {Path: "/out/[x"}}

	local, err := Collect(context.Background(), root, arts, filepath.Join(t.TempDir(), "job"), false)
	require.NoError(t, err)
	remote, err := CollectFS(context.Background(), os.DirFS(root), arts, filepath.Join(t.TempDir(), "job"), false, Options{})
	require.NoError(t, err)
	assert.Equal(t, local, remote)
	assert.Equal(t, []string{"/out/a.txt", "/out/link", "/out/sub/b.txt"}, local.Copied)
	assert.Equal(t, []Link{{Path: "/out/link", Target: "/etc/passwd"}}, local.Links)
	assert.Equal(t, int64(9), local.Bytes)
	assert.Equal(t, map[string]string{
		"/out/fifo":    "fifo: not copied",
		"/none/*.log":  MatchedNothing,
		"/missing.txt": MatchedNothing,
		"/out/[x":      "bad glob pattern",
	}, skipReasons(local))
}

// TestProcFilesCopiedWhole: a /proc file says it is 0 bytes; it is read
// until EOF, not copied empty.
func TestProcFilesCopiedWhole(t *testing.T) {
	want, err := os.ReadFile("/proc/version")
	require.NoError(t, err)
	require.NotEmpty(t, want)
	dest := t.TempDir()
	res, err := Collect(context.Background(), "/", []spec.Artifact{{Path: "/proc/version"}, {Path: "/proc/self/status"}}, dest, false)
	require.NoError(t, err)
	assert.Equal(t, []string{"/proc/version", "/proc/self/status"}, res.Copied)
	got, err := os.ReadFile(filepath.Join(dest, "version"))
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
	status, err := os.ReadFile(filepath.Join(dest, "status"))
	require.NoError(t, err)
	assert.Contains(t, string(status), "Name:")
	assert.Equal(t, int64(len(want)+len(status)), res.Bytes)
}

// TestTooDeepReported: a tree deeper than maxDepth is copied down to the
// limit, the directory below is reported skipped, and Collect says the
// artifacts are incomplete (ErrTooDeep) instead of passing silently.
func TestTooDeepReported(t *testing.T) {
	root := filepath.Join(t.TempDir(), "rootfs")
	deep := filepath.Join(root, "tree", strings.Repeat("d/", maxDepth+3))
	mkfile(t, filepath.Join(deep, "bottom.txt"), "lost?", 0o644)
	mkfile(t, filepath.Join(root, "tree/top.txt"), "top", 0o644)
	dest := t.TempDir()
	res, err := Collect(context.Background(), root, []spec.Artifact{{Path: "/tree"}, {Path: "/tree/top.txt", Dest: "again"}}, dest, false)
	require.ErrorIs(t, err, ErrTooDeep)
	cut := "/tree/" + strings.Repeat("d/", maxDepth-1) + "d"
	assert.ErrorContains(t, err, "artifact /tree/d/d/")
	assert.ErrorContains(t, err, "d/d/d: directory tree deeper than 256 levels")
	assert.Contains(t, skipReasons(res)[cut], fmt.Sprintf("deeper than %d directories", maxDepth))
	assert.Contains(t, res.Copied, "/tree/top.txt", "the other artifacts are still copied")
	assert.FileExists(t, filepath.Join(dest, "again", "top.txt"))
}

// TestDestShownByItsPath: the runner writes through its open artifacts
// directory (/proc/self/fd/N/<job>); a planted symlink there is refused
// and the error names the directory by its path, not the descriptor's.
func TestDestShownByItsPath(t *testing.T) {
	root, _ := fixture(t)
	base, victim := t.TempDir(), t.TempDir()
	require.NoError(t, os.Symlink(victim, filepath.Join(base, "job")))
	dir, err := os.Open(base)
	require.NoError(t, err)
	defer dir.Close()
	dest := fmt.Sprintf("/proc/self/fd/%d/job", dir.Fd())
	_, err = Collect(context.Background(), root, []spec.Artifact{{Path: "/out"}}, dest, false)
	require.ErrorIs(t, err, ErrDestRefused)
	assert.ErrorContains(t, err, "artifact directory "+filepath.Join(base, "job")+" is a symlink")
	assert.NotContains(t, err.Error(), "/proc/self/fd")
	assert.Equal(t, map[string]string{}, treeRaw(t, victim))
}

func TestSummaryPlurals(t *testing.T) {
	one := Result{Copied: []string{"/a", "/l"}, Links: []Link{{"/l", "a"}}, Bytes: 5,
		Skipped: []Skip{{"/x/*", MatchedNothing}, {"/f", "fifo: not copied"}}}
	assert.Equal(t, "1 file, 1 link, 5 B; 1 pattern matched nothing; 1 skipped", one.Summary())
	assert.Equal(t, []string{"link /l -> a", "matched nothing: /x/*", "skipped /f: fifo: not copied"}, one.Details())
	two := Result{Copied: []string{"/a", "/b"}, Bytes: 2048, Skipped: []Skip{{"/x", MatchedNothing}, {"/y", MatchedNothing}}}
	assert.Equal(t, "2 files, 2.0 KiB; 2 patterns matched nothing", two.Summary())
	assert.Equal(t, "0 files, 0 B", Result{}.Summary())
}
