package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
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
	for _, tt := range hostileTars {
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

// hostileTars are root filesystems a hostile image may carry: extraction
// and import both refuse each with the same error (want), or accept it
// (want "").
var hostileTars = []struct {
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
	{"write beneath a file", []ent{
		{name: "file", body: "x"},
		{name: "file/evil", body: "x"},
	}, `unsafe tarball entry "file/evil": a parent is not a directory`},
	{"hard link to a missing entry", []ent{{name: "evil", typ: tar.TypeLink, link: "nothing"}},
		`unsafe tarball entry "evil": hard link to "nothing": no such entry before it`},
	{"hard link to a directory", []ent{
		{name: "d/", typ: tar.TypeDir},
		{name: "evil", typ: tar.TypeLink, link: "d"},
	}, `unsafe tarball entry "evil": hard link to "d": a directory`},
	{"symlink replaced by a directory, then written into", []ent{
		{name: "sym", typ: tar.TypeSymlink, link: "../outside"},
		{name: "sym/", typ: tar.TypeDir},
		{name: "sym/file", body: "x"},
	}, ""},
	{"directory replaced by a symlink, then hard linked through", []ent{
		{name: "d/", typ: tar.TypeDir},
		{name: "d", typ: tar.TypeSymlink, link: "../outside"},
		{name: "evil", typ: tar.TypeLink, link: "d/sentinel"},
	}, `unsafe tarball entry "evil": hard link to "d/sentinel": path goes through a symlink`},
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

// Import refuses what extraction would, so a hostile image is never stored:
// the same cases, as a split image's rootfs and inside a unified tarball.
func TestImportHostile(t *testing.T) {
	for _, tt := range hostileTars {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("split", func(t *testing.T) {
				s := newStore(t)
				dir := t.TempDir()
				meta := writeFile(t, dir, "meta", mkTar(t, unifiedEnts(testMeta)[:4]))
				rootfs := writeFile(t, dir, "rootfs", compress(t, "gzip", mkTar(t, tt.ents)))
				_, err := s.Import(context.Background(), []string{meta, rootfs}, ImportOptions{})
				assertImportRefused(t, s, err, tt.want)
			})
			t.Run("unified", func(t *testing.T) {
				// Under rootfs/: entry names and hard link targets move
				// there, absolute ones stay absolute.
				in := func(name string) string {
					if strings.HasPrefix(name, "/") {
						return name
					}
					return "rootfs/" + name
				}
				ents := unifiedEnts(testMeta)[:5]
				for _, e := range tt.ents {
					e.name = in(e.name)
					if e.typ == tar.TypeLink {
						e.link = in(e.link)
					}
					ents = append(ents, e)
				}
				want := ""
				if tt.want != "" {
					entry := strings.SplitN(tt.want, `"`, 3)[1]
					want = fmt.Sprintf("unsafe tarball entry %q: ", in(entry))
				}
				s := newStore(t)
				_, err := s.Import(context.Background(), []string{writeFile(t, t.TempDir(), "i", compress(t, "xz", mkTar(t, ents)))}, ImportOptions{})
				assertImportRefused(t, s, err, want)
			})
		})
	}
}

// assertImportRefused checks that an import failed with want (contained in
// the error) and stored nothing, or succeeded when want is "".
func assertImportRefused(t *testing.T, s *Store, err error, want string) {
	t.Helper()
	if want == "" {
		require.NoError(t, err)
		return
	}
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrUnsafeEntry)
	var ue *UnsafeEntryError
	assert.ErrorAs(t, err, &ue)
	assert.Contains(t, err.Error(), want)
	imgs, err := s.List()
	require.NoError(t, err)
	assert.Empty(t, imgs, "nothing stored")
	assertNoTemp(t, s)
}
