package images

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tree lists dir as "path type" lines (d, f:contents, l->target), sorted.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		require.NoError(t, err)
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.IsDir():
			out = append(out, rel+"/")
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out = append(out, rel+" -> "+l)
		default:
			data, _ := os.ReadFile(p)
			out = append(out, rel+" = "+string(data))
		}
		return nil
	}))
	sort.Strings(out)
	return out
}

func applyLayers(t *testing.T, dir string, layers ...[]ent) error {
	t.Helper()
	a, err := NewLayerApplier(dir, UnpackOptions{SkipDevices: true})
	require.NoError(t, err)
	defer a.Close()
	for _, l := range layers {
		if err := a.Apply(context.Background(), bytes.NewReader(mkTar(t, l))); err != nil {
			return err
		}
	}
	return nil
}

var lowerLayer = []ent{
	{name: "etc/", typ: tar.TypeDir, mode: 0o755},
	{name: "etc/passwd", body: "root:x:0:0\n"},
	{name: "etc/gone", body: "deleted by the upper layer"},
	{name: "etc/gonedir/", typ: tar.TypeDir, mode: 0o755},
	{name: "etc/gonedir/f", body: "deleted with its directory"},
	{name: "opt/", typ: tar.TypeDir, mode: 0o755},
	{name: "opt/app/", typ: tar.TypeDir, mode: 0o755},
	{name: "opt/app/old", body: "old"},
	{name: "opt/app/sub/", typ: tar.TypeDir, mode: 0o755},
	{name: "opt/app/sub/deep", body: "old deep"},
	{name: "opt/link", typ: tar.TypeSymlink, link: "/etc"},
}

// The upper layer deletes a file and a directory (whiteouts), replaces a
// directory opaquely (its own new entries stay, wherever the marker is),
// and hard-links a file of the lower layer.
func TestLayerApplierWhiteouts(t *testing.T) {
	dir := t.TempDir()
	upper := []ent{
		{name: "etc/.wh.gone"},
		{name: "etc/.wh.gonedir"},
		{name: "etc/.wh.never-existed"},
		{name: "opt/app/", typ: tar.TypeDir, mode: 0o755},
		{name: "opt/app/new", body: "new"},
		{name: "opt/app/.wh..wh..opq"},
		{name: "opt/app/after", body: "after the marker"},
		{name: "etc/passwd-link", typ: tar.TypeLink, link: "etc/passwd"},
		{name: "opt/.wh..wh.plnk"},
	}
	require.NoError(t, applyLayers(t, dir, lowerLayer, upper))
	assert.Equal(t, []string{
		"etc/",
		"etc/passwd = root:x:0:0\n",
		"etc/passwd-link = root:x:0:0\n",
		"opt/",
		"opt/app/",
		"opt/app/after = after the marker",
		"opt/app/new = new",
		"opt/link -> /etc",
	}, tree(t, dir))
	var a, b syscall.Stat_t
	require.NoError(t, syscall.Stat(filepath.Join(dir, "etc/passwd"), &a))
	require.NoError(t, syscall.Stat(filepath.Join(dir, "etc/passwd-link"), &b))
	assert.Equal(t, a.Ino, b.Ino, "a hard link to a lower layer's file")
}

// A later layer's file or symlink replaces a directory of an earlier one
// with all its contents (a single tarball may only replace an empty one).
func TestLayerApplierReplacesDirectories(t *testing.T) {
	dir := t.TempDir()
	lower := []ent{
		{name: "var/", typ: tar.TypeDir, mode: 0o755},
		{name: "var/lib/", typ: tar.TypeDir, mode: 0o755},
		{name: "var/lib/x/", typ: tar.TypeDir, mode: 0o755},
		{name: "var/lib/x/f", body: "gone with its directory"},
		{name: "var/run/", typ: tar.TypeDir, mode: 0o755},
		{name: "var/run/pid", body: "1"},
	}
	upper := []ent{
		{name: "var/lib/x", body: "a file now"},
		{name: "var/run", typ: tar.TypeSymlink, link: "/run"},
	}
	require.NoError(t, applyLayers(t, dir, lower, upper))
	assert.Equal(t, []string{"var/", "var/lib/", "var/lib/x = a file now", "var/run -> /run"}, tree(t, dir))
	err := applyLayers(t, t.TempDir(), lower, upper, []ent{{name: "var/run/pid", body: "through the new symlink"}})
	assert.ErrorIs(t, err, ErrUnsafeEntry, "the replaced directory's children are forgotten")
}

// Hostile layers are refused naming the entry; nothing outside the target
// is touched.
func TestLayerApplierHostile(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	tests := []struct {
		name  string
		upper []ent
		want  string
	}{
		{"dot-dot", []ent{{name: "../escape", body: "x"}}, `".." component`},
		{"dot-dot inside", []ent{{name: "etc/../../escape", body: "x"}}, `".." component`},
		{"absolute", []ent{{name: "/etc/escape", body: "x"}}, "absolute path"},
		{"whiteout of ..", []ent{{name: "etc/.wh..."}}, `whiteout of "..": outside its directory`},
		{"whiteout of .. at the root", []ent{{name: ".wh..."}}, `whiteout of ".."`},
		{"whiteout of .", []ent{{name: "etc/.wh.."}}, `whiteout of "."`},
		{"whiteout of nothing", []ent{{name: "etc/.wh."}}, `whiteout of ""`},
		{"whiteout dot-dot path", []ent{{name: "../.wh.victim"}}, `".." component`},
		{"whiteout absolute", []ent{{name: "/tmp/.wh.victim"}}, "absolute path"},
		{"whiteout through a symlink", []ent{{name: "opt/out/.wh.victim"}}, "symlink"},
		{"opaque through a symlink", []ent{{name: "opt/out/.wh..wh..opq"}}, "symlink"},
		{"write through a symlink", []ent{{name: "opt/out/new", body: "x"}}, "symlink"},
		{"hard link outside", []ent{{name: "etc/l", typ: tar.TypeLink, link: "../victim"}}, `".." component`},
		{"hard link to a symlink", []ent{{name: "etc/l", typ: tar.TypeLink, link: "opt/out"}}, "a symlink"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(victim, []byte("keep"), 0o644))
			lower := append(append([]ent(nil), lowerLayer...), ent{name: "opt/out", typ: tar.TypeSymlink, link: outside})
			err := applyLayers(t, t.TempDir(), lower, tt.upper)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrUnsafeEntry)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), strings.TrimSuffix(tt.upper[0].name, "/"), "the error names the entry")
			data, err := os.ReadFile(victim)
			require.NoError(t, err)
			assert.Equal(t, "keep", string(data))
		})
	}
}
