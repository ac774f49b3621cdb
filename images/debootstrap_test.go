package images

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stintdev/stint/internal/sysexec"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuildDebootstrap builds a minbase bookworm for real from the host's
// mirror (minutes), once; a second build with the same options is cached.
func TestBuildDebootstrap(t *testing.T) {
	if testing.Short() {
		t.Skip("debootstrap takes minutes; not in -short")
	}
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, "debootstrap", "dpkg")
	if _, err := HostMirror(); err != nil {
		testenv.Unavailable(t, err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	s := newStore(t)
	opts := DebootstrapOptions{Suite: "bookworm", Variant: "minbase", Aliases: []string{"debian"}}
	img, err := BuildDebootstrap(ctx, s, opts)
	require.NoError(t, err)
	assert.Equal(t, "debian", img.Properties["os"])
	assert.Equal(t, "bookworm", img.Properties["release"])
	assert.Equal(t, HostArch(), img.Architecture)
	assert.Equal(t, []string{"debian"}, img.Aliases)

	again, err := BuildDebootstrap(ctx, s, opts)
	require.NoError(t, err)
	assert.Equal(t, img.Fingerprint, again.Fingerprint, "same options: cached, not rebuilt")
	assertNoTemp(t, s)

	root := t.TempDir()
	_, err = s.Unpack(ctx, img, root, UnpackOptions{})
	require.NoError(t, err)
	osr, err := os.ReadFile(filepath.Join(root, "etc/os-release"))
	require.NoError(t, err)
	assert.Contains(t, string(osr), "bookworm")
	// The unpacked tree is a working Debian: its own dpkg runs in a chroot.
	out, err := sysexec.Run(ctx, "chroot", root, "dpkg-query", "-W", "-f", "${Package}\n", "base-files")
	require.NoError(t, err)
	assert.Equal(t, "base-files\n", string(out))
	require.NoError(t, RenderTemplates(img, root, TriggerCreate, TemplateContext{Name: "deb1"}))
	hosts, err := os.ReadFile(filepath.Join(root, "etc/hosts"))
	require.NoError(t, err)
	assert.Contains(t, string(hosts), "127.0.1.1\tdeb1")
}

func TestUnpackSquashfs(t *testing.T) {
	testenv.RequiresTool(t, "mksquashfs", "unsquashfs")
	ctx := context.Background()
	src := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(src, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "etc/hostname"), []byte("sq\n"), 0o644))
	require.NoError(t, os.Symlink("etc/hostname", filepath.Join(src, "link")))
	dir := t.TempDir()
	sq := filepath.Join(dir, "rootfs.squashfs")
	_, err := sysexec.Run(ctx, "mksquashfs", src, sq, "-noappend", "-quiet")
	require.NoError(t, err)
	meta := writeFile(t, dir, "meta.tar", mkTar(t, unifiedEnts(testMeta)[:4]))

	s := newStore(t)
	img, err := s.Import(ctx, []string{meta, sq}, ImportOptions{})
	require.NoError(t, err)
	assert.Equal(t, "squashfs", img.RootfsFormat)
	assert.Equal(t, []string{"meta-" + img.Fingerprint + ".tar", img.Fingerprint + ".squashfs"}, img.ExportNames())
	target := t.TempDir()
	_, err = s.Unpack(ctx, img, target, UnpackOptions{})
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(target, "etc/hostname"))
	require.NoError(t, err)
	assert.Equal(t, "sq\n", string(b))
	l, err := os.Readlink(filepath.Join(target, "link"))
	require.NoError(t, err)
	assert.Equal(t, "etc/hostname", l)
}
