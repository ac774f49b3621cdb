package hostuser

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// copyTree copies the regular files and directories of src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	}))
}

// tree reads every regular file below dir, by path relative to it.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !d.Type().IsRegular() {
			out[rel] = "<" + d.Type().String() + ">"
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	}))
	return out
}

// TestAddTo: each testdata/rootfs/CASE, given the host user dev, becomes
// testdata/want/CASE exactly; a second run changes nothing. Clashes are
// refused with nothing written.
func TestAddTo(t *testing.T) {
	for _, c := range []struct {
		name    string
		changed []string
		clash   string
	}{
		{name: "debian", changed: []string{"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"}},
		{name: "busybox", changed: []string{"/etc/passwd", "/etc/group"}},
		{name: "empty", changed: []string{"/etc/passwd", "/etc/group"}},
		{name: "already"},
		{name: "stale", changed: []string{"/etc/passwd", "/etc/group"}},
		{name: "sharedgid", changed: []string{"/etc/passwd"}},
		{name: "clashname", clash: `/etc/passwd: user "dev" is uid 1000 in the image, the host's dev is uid 4242: clashes with the image`},
		{name: "clashuid", clash: `/etc/passwd: uid 4242 is "ubuntu" in the image, the host user is "dev" (remove or renumber ubuntu in the image): clashes with the image`},
		{name: "clashgroup", clash: `/etc/group: group "dev" is gid 1000 in the image, the host's dev is gid 4242: clashes with the image`},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			copyTree(t, filepath.Join("testdata/rootfs", c.name), root)
			changed, err := AddTo(root, dev)
			if c.clash != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrClash)
				assert.Contains(t, err.Error(), c.clash)
				assert.Empty(t, changed)
			} else {
				require.NoError(t, err)
				assert.Equal(t, c.changed, changed)
			}
			assert.Equal(t, tree(t, filepath.Join("testdata/want", c.name)), tree(t, root))
			if c.clash == "" {
				again, err := AddTo(root, dev)
				require.NoError(t, err)
				assert.Empty(t, again, "a second run changed files")
			}
		})
	}
}

// TestAddToKeepsOwnerAndMode: a replaced file keeps its owner and mode (a
// shadow file stays 0640).
func TestAddToKeepsOwnerAndMode(t *testing.T) {
	root := t.TempDir()
	copyTree(t, "testdata/rootfs/debian", root)
	shadow := filepath.Join(root, "etc/shadow")
	require.NoError(t, os.Chmod(shadow, 0o640))
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chown(shadow, 100000, 100042))
	}
	var before unix.Stat_t
	require.NoError(t, unix.Stat(shadow, &before))
	_, err := AddTo(root, dev)
	require.NoError(t, err)
	var after unix.Stat_t
	require.NoError(t, unix.Stat(shadow, &after))
	assert.Equal(t, uint32(0o640), after.Mode&0o7777)
	assert.Equal(t, before.Uid, after.Uid)
	assert.Equal(t, before.Gid, after.Gid)
	assert.NotEqual(t, before.Ino, after.Ino, "replaced by a rename, not written in place")
	left, err := filepath.Glob(filepath.Join(root, "etc/.*stint*"))
	require.NoError(t, err)
	assert.Empty(t, left, "temporary files left")
}

// TestAddToHostile: an image whose account files or /etc are links (to the
// host's files by absolute path or by climbing), a FIFO or a directory: the
// host files are never read or written, links stay links, and nothing in
// the root changes once a file is refused.
func TestAddToHostile(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, root, outside string)
		err   string // "" : succeeds inside the root
	}{
		{"passwd links to a host file", func(t *testing.T, root, outside string) {
			link(t, filepath.Join(outside, "passwd"), root, "etc/passwd")
		}, "/etc/passwd: a symlink: not a regular file"},
		{"passwd climbs out", func(t *testing.T, root, outside string) {
			rel, _ := filepath.Rel(filepath.Join(root, "etc"), filepath.Join(outside, "passwd"))
			link(t, rel, root, "etc/passwd")
		}, "/etc/passwd: a symlink: not a regular file"},
		{"shadow links out, passwd is fine", func(t *testing.T, root, outside string) {
			link(t, filepath.Join(outside, "shadow"), root, "etc/shadow")
		}, "/etc/shadow: a symlink: not a regular file"},
		{"gshadow is a FIFO", func(t *testing.T, root, outside string) {
			require.NoError(t, os.Remove(filepath.Join(root, "etc/gshadow")))
			require.NoError(t, unix.Mkfifo(filepath.Join(root, "etc/gshadow"), 0o644))
		}, "/etc/gshadow: not a regular file"},
		{"group is a directory", func(t *testing.T, root, outside string) {
			require.NoError(t, os.Remove(filepath.Join(root, "etc/group")))
			require.NoError(t, os.Mkdir(filepath.Join(root, "etc/group"), 0o755))
		}, "/etc/group: not a regular file"},
		{"/etc links to the host's by absolute path: resolved in the root", func(t *testing.T, root, outside string) {
			require.NoError(t, os.RemoveAll(filepath.Join(root, "etc")))
			link(t, outside, root, "etc")
		}, "/etc: no such file or directory"},
		{"/etc climbs out: resolved in the root", func(t *testing.T, root, outside string) {
			require.NoError(t, os.RemoveAll(filepath.Join(root, "etc")))
			rel, _ := filepath.Rel(root, outside)
			link(t, rel, root, "etc")
		}, "/etc: no such file or directory"},
		{"/etc links inside the root: followed there", func(t *testing.T, root, outside string) {
			require.NoError(t, os.Rename(filepath.Join(root, "etc"), filepath.Join(root, "real-etc")))
			link(t, "/../../real-etc", root, "etc")
		}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			root, outside := filepath.Join(base, "root"), filepath.Join(base, "host-etc")
			copyTree(t, "testdata/rootfs/debian", root)
			copyTree(t, "testdata/rootfs/debian/etc", outside)
			hostBefore := tree(t, outside)
			c.setup(t, root, outside)
			rootBefore := tree(t, root)
			links := symlinks(t, root)

			_, err := AddTo(root, dev)
			if c.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.err)
				assert.Equal(t, rootBefore, tree(t, root), "the root changed")
			} else {
				require.NoError(t, err)
				assert.Contains(t, tree(t, root)["real-etc/passwd"], "dev:x:4242:4242::/home/dev:/bin/bash\n")
			}
			assert.Equal(t, hostBefore, tree(t, outside), "a file outside the root changed")
			assert.Equal(t, links, symlinks(t, root), "a link was replaced")
		})
	}
}

func link(t *testing.T, target, root, name string) {
	t.Helper()
	p := filepath.Join(root, name)
	_ = os.Remove(p)
	require.NoError(t, os.Symlink(target, p))
}

// symlinks lists the links below dir with their targets.
func symlinks(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			out = append(out, p+" -> "+target)
		}
		return err
	}))
	sort.Strings(out)
	return out
}

// TestAddToRefusesBadUser: a user that can't be written as it is.
func TestAddToRefusesBadUser(t *testing.T) {
	root := t.TempDir()
	copyTree(t, "testdata/rootfs/debian", root)
	for _, u := range []User{
		{Name: "dev", UID: 0, GID: 4242, Group: "dev", Shell: "/bin/sh", Home: "/home/dev"},
		{Name: "de:v", UID: 4242, GID: 4242, Group: "dev", Shell: "/bin/sh", Home: "/home/dev"},
		{Name: "dev", UID: 4242, GID: 4242, Group: "dev", Shell: "/bin/sh", Home: "/home/dev\nroot::0:0::/:/bin/sh"},
		{Name: "dev", UID: 4242, GID: 4242, Group: "dev", Shell: "sh", Home: "/home/dev"},
		{Name: "1234", UID: 4242, GID: 4242, Group: "dev", Shell: "/bin/sh", Home: "/home/dev"},
	} {
		_, err := AddTo(root, u)
		assert.Error(t, err, "%+v", u)
	}
	assert.Equal(t, tree(t, "testdata/rootfs/debian"), tree(t, root))
}

// TestMakeHome: the home is made, the user's, 0700, once; a home that
// exists is left alone.
func TestMakeHome(t *testing.T) {
	root := t.TempDir()
	copyTree(t, "testdata/rootfs/debian", root)
	u := dev
	if os.Geteuid() != 0 {
		u.UID, u.GID = uint32(os.Getuid()), uint32(os.Getgid())
	}
	made, err := MakeHome(root, u)
	require.NoError(t, err)
	assert.True(t, made)
	var st unix.Stat_t
	require.NoError(t, unix.Stat(filepath.Join(root, "home/dev"), &st))
	assert.Equal(t, u.UID, st.Uid)
	assert.Equal(t, u.GID, st.Gid)
	assert.Equal(t, uint32(0o700), st.Mode&0o7777)
	made, err = MakeHome(root, u)
	require.NoError(t, err)
	assert.False(t, made)
}

// TestMakeHomeLinkOut: a /home that links out of the root (to a directory
// that exists on the host, not in the root) is refused; nothing is made
// on the host.
func TestMakeHomeLinkOut(t *testing.T) {
	root := t.TempDir()
	copyTree(t, "testdata/rootfs/debian", root)
	outside := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "home")))
	_, err := MakeHome(root, dev)
	assert.Error(t, err)
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Empty(t, entries, "made outside the root")
}
