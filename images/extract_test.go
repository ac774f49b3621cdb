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

func TestUnpackUnified(t *testing.T) {
	s := newStore(t)
	data := compress(t, "zstd", mkTar(t, unifiedEnts(testMeta)))
	img, err := s.Import(context.Background(), []string{writeFile(t, t.TempDir(), "i", data)}, ImportOptions{})
	require.NoError(t, err)

	for _, skip := range []bool{true, false} {
		t.Run(map[bool]string{true: "skip devices", false: "keep devices"}[skip], func(t *testing.T) {
			if !skip && os.Geteuid() != 0 {
				t.Skip("making device nodes needs root; covered under STINT_INTEGRATION as root")
			}
			target := t.TempDir()
			warnings, err := s.Unpack(context.Background(), img, target, UnpackOptions{SkipDevices: skip})
			require.NoError(t, err)
			// metadata.yaml and templates/ are not part of the rootfs.
			assert.Equal(t, []string{"bin", "dev", "etc", "tmp"}, listDir(t, target))
			rootFi, err := os.Stat(target)
			require.NoError(t, err)
			assert.Equal(t, os.ModeDir|0o755, rootFi.Mode(), "the rootfs/ entry's mode applies to the target")
			assert.True(t, rootFi.ModTime().Equal(testTime), "root mtime kept: %v", rootFi.ModTime())

			tool := filepath.Join(target, "bin/tool")
			fi, err := os.Lstat(tool)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o755)|os.ModeSetuid, fi.Mode(), "mode with setuid kept")
			assert.True(t, fi.ModTime().Equal(testTime), "mtime kept: %v", fi.ModTime())
			if os.Geteuid() == 0 {
				st := fi.Sys().(*syscall.Stat_t)
				assert.Equal(t, [2]uint32{1000, 1001}, [2]uint32{st.Uid, st.Gid}, "ownership kept")
			}
			link, err := os.Readlink(filepath.Join(target, "bin/alias"))
			require.NoError(t, err)
			assert.Equal(t, "tool", link)
			hard, err := os.Stat(filepath.Join(target, "bin/hard"))
			require.NoError(t, err)
			assert.True(t, os.SameFile(fi, hard), "hard link is the same inode")
			tmp, err := os.Stat(filepath.Join(target, "tmp"))
			require.NoError(t, err)
			assert.Equal(t, os.ModeDir|os.ModeSticky|0o777, tmp.Mode())
			assert.True(t, tmp.ModTime().Equal(testTime), "directory mtime kept: %v", tmp.ModTime())

			_, err = os.Lstat(filepath.Join(target, "dev/null"))
			if skip {
				assert.ErrorIs(t, err, os.ErrNotExist)
				require.Len(t, warnings, 1)
				assert.Contains(t, warnings[0], "skipped 1 device node")
			} else {
				require.NoError(t, err)
				assert.Empty(t, warnings)
			}
		})
	}

	// The target must be empty.
	target := t.TempDir()
	writeFile(t, target, "x", nil)
	_, err = s.Unpack(context.Background(), img, target, UnpackOptions{})
	assert.ErrorContains(t, err, "not empty")
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// Hostile tarballs: each is rejected with an error naming the entry, and
// nothing appears outside the target.
func TestExtractHostile(t *testing.T) {
	tests := []struct {
		name string
		ents []ent
		want string // the whole error: it names the entry and says why
	}{
		{"absolute path", []ent{{name: "/etc/evil", body: "x"}}, `unsafe tarball entry "/etc/evil": absolute path`},
		{"dot-dot", []ent{{name: "a/../../evil", body: "x"}}, `unsafe tarball entry "a/../../evil": ".." component`},
		{"dot-dot at start", []ent{{name: "../evil", body: "x"}}, `unsafe tarball entry "../evil": ".." component`},
		{"symlink then write through it", []ent{
			{name: "link", typ: tar.TypeSymlink, link: "../outside"},
			{name: "link/evil", body: "x"},
		}, `unsafe tarball entry "link/evil": path goes through a symlink`},
		{"absolute symlink then write through it", []ent{
			{name: "etc", typ: tar.TypeSymlink, link: "/etc-outside"},
			{name: "etc/passwd", body: "x"},
		}, `unsafe tarball entry "etc/passwd": path goes through a symlink`},
		{"symlink inside then write through it", []ent{
			{name: "real/", typ: tar.TypeDir},
			{name: "link", typ: tar.TypeSymlink, link: "real"},
			{name: "link/file", body: "x"},
		}, `unsafe tarball entry "link/file": path goes through a symlink`},
		{"hard link out", []ent{{name: "evil", typ: tar.TypeLink, link: "../outside/sentinel"}},
			`unsafe tarball entry "evil": hard link to "../outside/sentinel": ".." component`},
		{"hard link absolute", []ent{{name: "evil", typ: tar.TypeLink, link: "/etc/passwd"}},
			`unsafe tarball entry "evil": hard link to "/etc/passwd": absolute path`},
		{"hard link to a symlink leading out", []ent{
			{name: "sym", typ: tar.TypeSymlink, link: "../outside/sentinel"},
			{name: "evil", typ: tar.TypeLink, link: "sym"},
		}, `unsafe tarball entry "evil": hard link to "sym": a symlink`},
		{"hard link through a symlink", []ent{
			{name: "sym", typ: tar.TypeSymlink, link: "../outside"},
			{name: "evil", typ: tar.TypeLink, link: "sym/sentinel"},
		}, `unsafe tarball entry "evil": hard link to "sym/sentinel": path goes through a symlink`},
		{"symlink then overwrite it as a file", []ent{
			// The file replaces the symlink; it must not write to the link's target.
			{name: "sym", typ: tar.TypeSymlink, link: "../outside/sentinel"},
			{name: "sym", body: "replaced"},
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			target := filepath.Join(base, "target")
			outside := filepath.Join(base, "outside")
			require.NoError(t, os.Mkdir(target, 0o755))
			require.NoError(t, os.Mkdir(outside, 0o755))
			sentinel := writeFile(t, outside, "sentinel", []byte("untouched"))

			_, err := ExtractTar(context.Background(), bytes.NewReader(mkTar(t, tt.ents)), target, "", UnpackOptions{})
			if tt.want == "" {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrUnsafeEntry)
				assert.EqualError(t, err, tt.want)
			}
			// Nothing outside the target: base holds only target and outside,
			// outside only the untouched sentinel.
			assert.Equal(t, []string{"outside", "target"}, listDir(t, base))
			assert.Equal(t, []string{"sentinel"}, listDir(t, outside))
			b, err := os.ReadFile(sentinel)
			require.NoError(t, err)
			assert.Equal(t, "untouched", string(b))
			fi, err := os.Stat(sentinel)
			require.NoError(t, err)
			assert.Equal(t, uint64(1), fi.Sys().(*syscall.Stat_t).Nlink, "no hard link to the sentinel")
			assertNoEscape(t, target)
		})
	}
}

// assertNoEscape checks that no regular file under target has a name or
// content we did not expect from the hostile cases' "evil" payloads outside.
func assertNoEscape(t *testing.T, target string) {
	t.Helper()
	for _, p := range []string{"/etc/evil", "/etc-outside"} {
		_, err := os.Lstat(p)
		assert.ErrorIs(t, err, os.ErrNotExist, "%s must not exist", p)
	}
	_ = filepath.Walk(target, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.Contains(p, "..") {
			t.Errorf("odd path %s", p)
		}
		return nil
	})
}

// A hostile entry inside a stored unified image surfaces from Unpack too.
func TestUnpackHostileImage(t *testing.T) {
	s := newStore(t)
	ents := append(unifiedEnts(testMeta), ent{name: "rootfs/../../escape", body: "x"})
	img, err := s.Import(context.Background(), []string{writeFile(t, t.TempDir(), "i", mkTar(t, ents))}, ImportOptions{})
	if err != nil {
		// Import may reject it already; that is fine too, as long as it names it.
		assert.Contains(t, err.Error(), "rootfs/../../escape")
		return
	}
	base := t.TempDir()
	target := filepath.Join(base, "t")
	require.NoError(t, os.Mkdir(target, 0o755))
	_, err = s.Unpack(context.Background(), img, target, UnpackOptions{SkipDevices: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rootfs/../../escape")
	assert.Equal(t, []string{"t"}, listDir(t, base))
}

// In a unified image, a hard link may only point into rootfs/.
func TestExtractHardLinkOutsidePrefix(t *testing.T) {
	ents := []ent{
		{name: "metadata.yaml", body: testMeta},
		{name: "rootfs/", typ: tar.TypeDir, mode: 0o755},
		{name: "rootfs/meta", typ: tar.TypeLink, link: "metadata.yaml"},
	}
	target := t.TempDir()
	_, err := ExtractTar(context.Background(), bytes.NewReader(mkTar(t, ents)), target, "rootfs", UnpackOptions{})
	assert.EqualError(t, err, `unsafe tarball entry "rootfs/meta": hard link to "metadata.yaml": outside rootfs/`)
	assert.Empty(t, listDir(t, target))
}
