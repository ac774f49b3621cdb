package artifact

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const hostSecret = "HOST-SECRET-must-never-be-copied"

// fixture builds a container root with the traps the package must avoid,
// plus a host directory outside it holding a secret. It returns the root and
// the host directory.
func fixture(t *testing.T) (root, host string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "rootfs")
	host = filepath.Join(base, "host")
	files := map[string]string{
		"src/dist/a.tar.gz":  "A",
		"src/dist/b.tar.gz":  "BB",
		"src/dist/notes.txt": "notes",
		"etc/passwd":         "container-passwd",
		"out/x":              "x",
		"out/sub/y":          "y",
		"out/.hidden":        "h",
	}
	for p, content := range files {
		mkfile(t, filepath.Join(root, p), content, 0o644)
	}
	mkfile(t, filepath.Join(host, "secret"), hostSecret, 0o644)
	require.NoError(t, os.Chmod(filepath.Join(root, "out/x"), 0o750))
	require.NoError(t, os.Chmod(filepath.Join(root, "out/sub"), 0o710))
	mkfile(t, filepath.Join(root, "src/dist/suid.tar.gz"), "S", 0o644)
	require.NoError(t, os.Chmod(filepath.Join(root, "src/dist/suid.tar.gz"), 0o4755))
	links := map[string]string{
		"src/dist/abs.tar.gz":   "/etc/passwd",                  // absolute, would be the host's file
		"src/dist/rel.tar.gz":   "../../../../../../etc/passwd", // relative, climbing out
		"src/dist/inner.tar.gz": "a.tar.gz",                     // inside
		"src/dist/host.tar.gz":  filepath.Join(host, "secret"),  // the host's real path
		"out/sub/etc":           "/etc",
		"out/loop1":             "loop2",
		"out/loop2":             "loop1",
		"escape":                "/etc",                                // a directory link, absolute
		"updir":                 "../../../../../../../..",             // a directory link, climbing
		"hostdir":               host,                                  // the host's real directory
		"loopa":                 "loopb",                               // a loop in the middle of a path
		"loopb":                 "loopa",                               //
		"src/dist/dirlink":      "../../out",                           // a link to a directory, inside
		"src/dist/secretdir":    "../../../../../../../../" + host[1:], // climbing to the host dir
	}
	for p, target := range links {
		require.NoError(t, os.Symlink(target, filepath.Join(root, p)))
	}
	require.NoError(t, syscall.Mkfifo(filepath.Join(root, "src/dist/fifo.tar.gz"), 0o644))
	return root, host
}

func mkfile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), mode))
}

// tree describes dest: "f <mode> <content>", "l <target>" or "d <mode>".
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		require.NoError(t, err)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			require.NoError(t, err)
			out[rel] = "l " + target
		case fi.IsDir():
			out[rel] = fmt.Sprintf("d %#o", fi.Mode().Perm())
		default:
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			require.NotContains(t, string(b), hostSecret, "host content copied into %s", rel)
			out[rel] = fmt.Sprintf("f %#o %s", fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid), b)
		}
		return nil
	}))
	return out
}

func skipReasons(r Result) map[string]string {
	out := map[string]string{}
	for _, s := range r.Skipped {
		out[s.Path] = s.Reason
	}
	return out
}

func TestCollect(t *testing.T) {
	cases := []struct {
		name      string
		arts      []spec.Artifact
		failed    bool
		wantTree  map[string]string
		wantSkip  map[string]string // path -> substring of the reason
		wantLinks []Link
		wantBytes int64
	}{
		{
			name: "glob of files and links out of the root",
			arts: []spec.Artifact{{Path: "/src/dist/*.tar.gz"}},
			wantTree: map[string]string{
				"a.tar.gz":     "f 0644 A",
				"b.tar.gz":     "f 0644 BB",
				"suid.tar.gz":  "f 0755 S",
				"abs.tar.gz":   "l /etc/passwd",
				"rel.tar.gz":   "l ../../../../../../etc/passwd",
				"inner.tar.gz": "l a.tar.gz",
				"host.tar.gz":  "l HOST/secret",
			},
			wantSkip: map[string]string{"/src/dist/fifo.tar.gz": "fifo"},
			wantLinks: []Link{
				{"/src/dist/abs.tar.gz", "/etc/passwd"},
				{"/src/dist/host.tar.gz", "HOST/secret"},
				{"/src/dist/inner.tar.gz", "a.tar.gz"},
				{"/src/dist/rel.tar.gz", "../../../../../../etc/passwd"},
			},
			wantBytes: 4,
		},
		{
			name: "directory copied recursively under a dest subdirectory",
			arts: []spec.Artifact{{Path: "/out", Dest: "res/"}},
			wantTree: map[string]string{
				"res":             "d 0755",
				"res/out":         "d 0755",
				"res/out/x":       "f 0750 x",
				"res/out/.hidden": "f 0644 h",
				"res/out/sub":     "d 0710",
				"res/out/sub/y":   "f 0644 y",
				"res/out/sub/etc": "l /etc",
				"res/out/loop1":   "l loop2",
				"res/out/loop2":   "l loop1",
			},
			wantLinks: []Link{{"/out/loop1", "loop2"}, {"/out/loop2", "loop1"}, {"/out/sub/etc", "/etc"}},
			wantBytes: 3,
		},
		{
			name:      "absolute directory link in the middle resolves inside the root",
			arts:      []spec.Artifact{{Path: "/escape/passwd"}},
			wantTree:  map[string]string{"passwd": "f 0644 container-passwd"},
			wantBytes: 16,
		},
		{
			name:      "climbing relative link in the middle is clamped to the root",
			arts:      []spec.Artifact{{Path: "/updir/etc/pass*"}},
			wantTree:  map[string]string{"passwd": "f 0644 container-passwd"},
			wantBytes: 16,
		},
		{
			name:     "link to the host's real directory in the middle finds nothing",
			arts:     []spec.Artifact{{Path: "/hostdir/secret"}, {Path: "/src/dist/secretdir/*"}},
			wantTree: map[string]string{},
			wantSkip: map[string]string{"/hostdir/secret": "matched nothing", "/src/dist/secretdir/*": "matched nothing"},
		},
		{
			name: "matched link to a directory is copied as a link, not walked",
			arts: []spec.Artifact{{Path: "/src/dist/dirl*"}, {Path: "/src/dist/secretdir"}},
			wantTree: map[string]string{
				"dirlink":   "l ../../out",
				"secretdir": "l ../../../../../../../../HOSTREL",
			},
			wantLinks: []Link{{"/src/dist/dirlink", "../../out"}, {"/src/dist/secretdir", "../../../../../../../../HOSTREL"}},
		},
		{
			name:     "symlink loop in the middle of a path",
			arts:     []spec.Artifact{{Path: "/loopa/x"}},
			wantTree: map[string]string{},
			wantSkip: map[string]string{"/loopa/x": "too many levels of symbolic links"},
		},
		{
			name:     "no match, and the root itself",
			arts:     []spec.Artifact{{Path: "/nope/*"}, {Path: "/missing.txt"}, {Path: "/"}, {Path: "/src/[x"}},
			wantTree: map[string]string{},
			wantSkip: map[string]string{
				"/nope/*": "matched nothing", "/missing.txt": "matched nothing", "/": "container root", "/src/[x": "bad glob pattern",
			},
		},
		{
			name: "on_success only after success",
			arts: []spec.Artifact{
				{Path: "/src/dist/a.tar.gz", When: spec.WhenOnSuccess},
				{Path: "/src/dist/b.tar.gz", When: spec.WhenOnFailure},
				{Path: "/src/dist/notes.txt", When: spec.WhenAlways},
			},
			wantTree:  map[string]string{"a.tar.gz": "f 0644 A", "notes.txt": "f 0644 notes"},
			wantBytes: 6,
		},
		{
			name: "on_failure only after failure",
			arts: []spec.Artifact{
				{Path: "/src/dist/a.tar.gz"},
				{Path: "/src/dist/b.tar.gz", When: spec.WhenOnFailure},
				{Path: "/src/dist/notes.txt", When: spec.WhenAlways},
			},
			failed:    true,
			wantTree:  map[string]string{"b.tar.gz": "f 0644 BB", "notes.txt": "f 0644 notes"},
			wantBytes: 7,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root, host := fixture(t)
			dest := filepath.Join(t.TempDir(), "artifacts", "job")
			fix := strings.NewReplacer("HOSTREL", host[1:], "HOST", host)
			res, err := Collect(context.Background(), root, tc.arts, dest, tc.failed)
			require.NoError(t, err)
			want := map[string]string{}
			for k, v := range tc.wantTree {
				want[k] = fix.Replace(v)
			}
			assert.Equal(t, want, tree(t, dest))
			got := skipReasons(res)
			assert.Len(t, got, len(tc.wantSkip), "skips: %v", res.Skipped)
			for p, reason := range tc.wantSkip {
				assert.Contains(t, got[p], reason, "skip reason for %s", p)
			}
			var links []Link
			for _, l := range tc.wantLinks {
				links = append(links, Link{l.Path, fix.Replace(l.Target)})
			}
			assert.Equal(t, links, res.Links)
			assert.Equal(t, tc.wantBytes, res.Bytes)
			assert.Equal(t, len(tc.wantTree) == 0, len(res.Copied) == 0, "copied: %v", res.Copied)
			b, err := os.ReadFile(filepath.Join(host, "secret"))
			require.NoError(t, err)
			assert.Equal(t, hostSecret, string(b), "the host file is untouched")
		})
	}
}

func TestDestEscapesRefused(t *testing.T) {
	root, _ := fixture(t)
	for _, d := range []string{"../x", "a/../../x", "/abs"} {
		base := t.TempDir()
		dest := filepath.Join(base, "job")
		_, err := Collect(context.Background(), root, []spec.Artifact{{Path: "/src/dist/a.tar.gz", Dest: d}}, dest, false)
		assert.ErrorIs(t, err, ErrBadDest, "dest %q", d)
		assert.Equal(t, map[string]string{}, tree(t, base), "nothing written for dest %q", d)
	}
}

// A symlink already in dest (an earlier artifact, or planted) is never
// written through: as the Dest directory it is refused, as a file it is
// replaced by the copy.
func TestDestSymlinksNotFollowed(t *testing.T) {
	root, host := fixture(t)
	dest := t.TempDir()
	require.NoError(t, os.Symlink(host, filepath.Join(dest, "dist")))
	require.NoError(t, os.Symlink(filepath.Join(host, "secret"), filepath.Join(dest, "a.tar.gz")))
	require.NoError(t, os.Mkdir(filepath.Join(dest, "b.tar.gz"), 0o755))

	_, err := Collect(context.Background(), root, []spec.Artifact{{Path: "/src/dist/a.tar.gz", Dest: "dist"}}, dest, false)
	assert.ErrorContains(t, err, "not a directory")

	res, err := Collect(context.Background(), root, []spec.Artifact{{Path: "/src/dist/[ab].tar.gz"}}, dest, false)
	require.NoError(t, err)
	assert.Equal(t, []string{"/src/dist/a.tar.gz"}, res.Copied)
	assert.Contains(t, skipReasons(res)["/src/dist/b.tar.gz"], "is a directory on the host")

	assert.Equal(t, map[string]string{"dist": "l " + host, "a.tar.gz": "f 0644 A", "b.tar.gz": "d 0755"}, tree(t, dest))
	assert.Equal(t, map[string]string{"secret": "f 0644 " + hostSecret}, treeRaw(t, host))
}

// treeRaw is tree without the host-secret guard, for the host directory.
func treeRaw(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		fi, err := e.Info()
		require.NoError(t, err)
		out[e.Name()] = fmt.Sprintf("f %#o %s", fi.Mode().Perm(), b)
	}
	return out
}

func TestCancelled(t *testing.T) {
	root, _ := fixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Collect(ctx, root, []spec.Artifact{{Path: "/out"}}, t.TempDir(), false)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestRootfsMissing(t *testing.T) {
	_, err := Collect(context.Background(), filepath.Join(t.TempDir(), "nope"), []spec.Artifact{{Path: "/x"}}, t.TempDir(), false)
	assert.ErrorContains(t, err, "open container root")
	// Nothing wanted: the root is not even opened.
	_, err = Collect(context.Background(), "/nonexistent", []spec.Artifact{{Path: "/x", When: spec.WhenOnFailure}}, t.TempDir(), false)
	assert.NoError(t, err)
}

// Under sudo, what Collect writes belongs to the invoking user, whatever
// owned it in the container.
func TestSudoOwnership(t *testing.T) {
	testenv.RequiresRoot(t)
	root, _ := fixture(t)
	require.NoError(t, os.Lchown(filepath.Join(root, "out/x"), 100000, 100000))
	t.Setenv("SUDO_UID", "4242")
	t.Setenv("SUDO_GID", "4343")
	base := t.TempDir()
	dest := filepath.Join(base, "artifacts", "job")
	_, err := Collect(context.Background(), root, []spec.Artifact{{Path: "/out", Dest: "d"}}, dest, false)
	require.NoError(t, err)
	for _, p := range []string{"artifacts", "artifacts/job", "artifacts/job/d", "artifacts/job/d/out", "artifacts/job/d/out/x", "artifacts/job/d/out/sub/etc"} {
		fi, err := os.Lstat(filepath.Join(base, p))
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		assert.Equal(t, [2]uint32{4242, 4343}, [2]uint32{st.Uid, st.Gid}, p)
	}
}

// The job's artifact directory itself (<artifacts>/<job>) may have been
// planted as a symlink by a job writing into a bind-mounted workspace that
// holds ./artifacts: it is refused, never written through, and the error
// says why. The --artifacts base above it is the user's choice and may be a
// symlink.
func TestDestDirSymlinkRefused(t *testing.T) {
	root, _ := fixture(t)
	arts := []spec.Artifact{{Path: "/src/dist/a.tar.gz"}, {Path: "/out", Dest: "sub"}}
	for name, target := range map[string]string{"existing dir": "", "missing dir": "new"} {
		t.Run(name, func(t *testing.T) {
			base, victim := t.TempDir(), t.TempDir()
			dest := filepath.Join(base, "job")
			require.NoError(t, os.Symlink(filepath.Join(victim, target), dest))
			res, err := Collect(context.Background(), root, arts, dest, false)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "symlink")
			assert.Contains(t, err.Error(), dest)
			assert.Empty(t, res.Copied)
			assert.Equal(t, map[string]string{}, treeRaw(t, victim), "nothing written through the link")
		})
	}

	t.Run("base is a symlink", func(t *testing.T) {
		real := t.TempDir()
		base := filepath.Join(t.TempDir(), "artifacts")
		require.NoError(t, os.Symlink(real, base))
		res, err := Collect(context.Background(), root, arts[:1], filepath.Join(base, "job"), false)
		require.NoError(t, err)
		assert.Equal(t, []string{"/src/dist/a.tar.gz"}, res.Copied)
		assert.Equal(t, map[string]string{"job": "d 0755", "job/a.tar.gz": "f 0644 A"}, tree(t, real))
	})
}

// sparse makes a file of size bytes at p that is all hole but for data
// (4 KiB blocks of 'x') at each offset.
func sparse(t *testing.T, p string, size int64, offsets ...int64) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	f, err := os.Create(p)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Truncate(size))
	for _, off := range offsets {
		_, err := f.WriteAt([]byte(strings.Repeat("x", 4096)), off)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
}

// allocated is the disk space a file really uses.
func allocated(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}

// A sparse file keeps its holes on the host: a 1 GiB file with 8 KiB of
// data costs about 8 KiB, and reads back the same.
func TestSparseFilesStaySparse(t *testing.T) {
	root, _ := fixture(t)
	const size = 1 << 30
	sparse(t, filepath.Join(root, "big/img"), size, 0, 512<<20)
	sparse(t, filepath.Join(root, "big/tail"), size, size-4096)
	sparse(t, filepath.Join(root, "big/hole"), size)
	if allocated(t, filepath.Join(root, "big/img")) > 1<<20 {
		t.Skip("the test's filesystem does not keep holes") // never on ext4, btrfs, tmpfs
	}
	dest := t.TempDir()
	res, err := Collect(context.Background(), root, []spec.Artifact{{Path: "/big"}}, dest, false)
	require.NoError(t, err)
	assert.Empty(t, res.Skipped)
	assert.Equal(t, int64(3*4096), res.Bytes, "only data is counted")
	for name, data := range map[string][]int64{"img": {0, 512 << 20}, "tail": {size - 4096}, "hole": nil} {
		p := filepath.Join(dest, "big", name)
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, int64(size), fi.Size(), name)
		assert.Less(t, allocated(t, p), int64(1<<20), "%s: holes stay holes", name)
		f, err := os.Open(p)
		require.NoError(t, err)
		buf := make([]byte, 4096)
		for _, off := range append(data, 4096*3, size/2+4096) {
			want := strings.Repeat("\x00", 4096)
			if slices.Contains(data, off) {
				want = strings.Repeat("x", 4096)
			}
			_, err := f.ReadAt(buf, off)
			require.NoError(t, err)
			assert.Equal(t, want, string(buf), "%s at %d", name, off)
		}
		f.Close()
	}
}

// Beyond Options.MaxBytes of data, copying stops: the file that would cross
// the cap and every later one are skipped with a reason, and no partial file
// is left.
func TestSizeCap(t *testing.T) {
	root, _ := fixture(t)
	mkfile(t, filepath.Join(root, "cap/1-small"), "12345", 0o644)
	mkfile(t, filepath.Join(root, "cap/2-big"), strings.Repeat("b", 100), 0o644)
	mkfile(t, filepath.Join(root, "cap/3-tiny"), "t", 0o644)
	sparse(t, filepath.Join(root, "cap/0-sparse"), 1<<20, 0) // 4 KiB of data: holes are free
	dest := t.TempDir()
	res, err := CollectWith(context.Background(), root, []spec.Artifact{{Path: "/cap"}}, dest, false, Options{MaxBytes: 4096 + 50})
	require.NoError(t, err)
	assert.Equal(t, int64(4096+5), res.Bytes)
	assert.Equal(t, []string{"/cap/0-sparse", "/cap/1-small"}, res.Copied)
	skips := skipReasons(res)
	assert.Len(t, skips, 2, "%v", res.Skipped)
	for _, p := range []string{"/cap/2-big", "/cap/3-tiny"} {
		assert.Contains(t, skips[p], "size cap", p)
	}
	assert.Equal(t, map[string]string{"cap": "d 0755", "cap/0-sparse": tree(t, dest)["cap/0-sparse"], "cap/1-small": "f 0644 12345"}, tree(t, dest))

	// No cap at all, and the default.
	res, err = CollectWith(context.Background(), root, []spec.Artifact{{Path: "/cap"}}, t.TempDir(), false, Options{MaxBytes: -1})
	require.NoError(t, err)
	assert.Equal(t, int64(4096+5+100+1), res.Bytes)
	assert.Empty(t, res.Skipped)
	assert.Greater(t, DefaultMaxBytes, int64(1<<30))
}
