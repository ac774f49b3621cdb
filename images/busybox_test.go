package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func busyboxBinary(t *testing.T) string {
	t.Helper()
	testenv.RequiresTool(t, "busybox")
	p, _ := exec.LookPath("busybox")
	return p
}

func TestBuildBusybox(t *testing.T) {
	bin := busyboxBinary(t)
	ctx := context.Background()
	s1, s2 := newStore(t), newStore(t)
	img, err := BuildBusybox(ctx, s1, BusyboxOptions{Binary: bin, Aliases: []string{"busybox"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"busybox"}, img.Aliases)
	assert.Equal(t, HostArch(), img.Architecture)
	assert.Equal(t, "busybox", img.Properties["os"])
	assert.Regexp(t, `^\d+\.\d+`, img.Properties["release"])
	assert.NotEmpty(t, img.Properties[BuildProperty])

	// Reproducible: another store, same binary → the same fingerprint.
	other, err := BuildBusybox(ctx, s2, BusyboxOptions{Binary: bin})
	require.NoError(t, err)
	assert.Equal(t, img.Fingerprint, other.Fingerprint)

	// Cached: same inputs return the image, only adding aliases.
	again, err := BuildBusybox(ctx, s1, BusyboxOptions{Binary: bin, Aliases: []string{"bb"}})
	require.NoError(t, err)
	assert.Equal(t, img.Fingerprint, again.Fingerprint)
	assert.Equal(t, img.Uploaded, again.Uploaded, "not rebuilt")
	assert.Equal(t, []string{"bb", "busybox"}, again.Aliases)

	// Different inputs → a different image.
	changed, err := BuildBusybox(ctx, s1, BusyboxOptions{Binary: bin, Properties: map[string]string{"description": "mine"}})
	require.NoError(t, err)
	assert.NotEqual(t, img.Fingerprint, changed.Fingerprint)
	assert.Equal(t, "mine", changed.Properties["description"])

	// The rootfs has what an init and jobs need.
	target := t.TempDir()
	_, err = s1.Unpack(ctx, img, target, UnpackOptions{SkipDevices: true})
	require.NoError(t, err)
	for _, l := range []string{"bin/sh", "sbin/init", "bin/ls"} {
		dst, err := os.Readlink(filepath.Join(target, l))
		require.NoError(t, err, l)
		assert.Equal(t, "/bin/busybox", dst, l)
	}
	for _, f := range []string{"etc/passwd", "etc/group", "etc/hosts", "etc/inittab", "etc/hostname"} {
		_, err := os.Stat(filepath.Join(target, f))
		assert.NoError(t, err, f)
	}
	for _, d := range []string{"dev", "proc", "sys", "run", "root"} {
		fi, err := os.Stat(filepath.Join(target, d))
		require.NoError(t, err, d)
		assert.True(t, fi.IsDir(), d)
	}
	fi, err := os.Stat(filepath.Join(target, "tmp"))
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|os.ModeSticky|0o777, fi.Mode())
	passwd, _ := os.ReadFile(filepath.Join(target, "etc/passwd"))
	assert.True(t, strings.HasPrefix(string(passwd), "root:x:0:0:"))
	inittab, _ := os.ReadFile(filepath.Join(target, "etc/inittab"))
	assert.NotContains(t, string(inittab), "getty", "no getty on a container console")

	// The image's busybox runs (it is the host's static binary).
	out, err := exec.Command(filepath.Join(target, "bin/busybox"), "echo", "hi").Output()
	require.NoError(t, err)
	assert.Equal(t, "hi\n", string(out))

	// Templates: /etc/hostname is the container's name on create.
	require.NoError(t, RenderTemplates(img, target, TriggerCreate, TemplateContext{Name: "web1"}))
	hn, err := os.ReadFile(filepath.Join(target, "etc/hostname"))
	require.NoError(t, err)
	assert.Equal(t, "web1\n", string(hn))
}

func TestRenderTemplates(t *testing.T) {
	s := newStore(t)
	img, err := s.Import(context.Background(), []string{writeFile(t, t.TempDir(), "i", mkTar(t, unifiedEnts(testMeta)))}, ImportOptions{})
	require.NoError(t, err)
	rootfs := t.TempDir()
	_, err = s.Unpack(context.Background(), img, rootfs, UnpackOptions{SkipDevices: true})
	require.NoError(t, err)
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(rootfs, p))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}

	// start: neither template applies.
	require.NoError(t, RenderTemplates(img, rootfs, TriggerStart, TemplateContext{Name: "c1"}))
	assert.Equal(t, "image\n", read("etc/hostname"))
	_, err = os.Stat(filepath.Join(rootfs, "etc/motd"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	// create: both, with the template's properties and the trigger.
	require.NoError(t, RenderTemplates(img, rootfs, TriggerCreate, TemplateContext{Name: "c1"}))
	assert.Equal(t, "c1\n", read("etc/hostname"))
	assert.Equal(t, "hello from c1 (create)\n", read("etc/motd"))

	// copy: hostname rewritten; motd is create-only and not for copy anyway.
	require.NoError(t, RenderTemplates(img, rootfs, TriggerCopy, TemplateContext{Name: "c2"}))
	assert.Equal(t, "c2\n", read("etc/hostname"))
	assert.Equal(t, "hello from c1 (create)\n", read("etc/motd"))

	// create_only: an existing file is left alone.
	require.NoError(t, RenderTemplates(img, rootfs, TriggerCreate, TemplateContext{Name: "c3"}))
	assert.Equal(t, "c3\n", read("etc/hostname"))
	assert.Equal(t, "hello from c1 (create)\n", read("etc/motd"))

	// A template never writes through a symlink out of the rootfs.
	outside := t.TempDir()
	require.NoError(t, os.RemoveAll(filepath.Join(rootfs, "etc")))
	require.NoError(t, os.Symlink(outside, filepath.Join(rootfs, "etc")))
	err = RenderTemplates(img, rootfs, TriggerCreate, TemplateContext{Name: "c4"})
	assert.ErrorIs(t, err, ErrUnsafeEntry)
	assert.Empty(t, listDir(t, outside))
}

func TestHostMirror(t *testing.T) {
	files, err := filepath.Glob("../testdata/images/sources/*.*")
	require.NoError(t, err)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".want") {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(f, filepath.Ext(f)) + ".want")
			require.NoError(t, err)
			assert.Equal(t, strings.TrimSpace(string(want)), mirrorIn(f))
		})
	}
	assert.Equal(t, 3, n)
}

// images and its subpackages (simplestreams, oci, ...) are pure Go and
// independent of the runner, storage, net and CLI.
func TestImportBoundaries(t *testing.T) {
	testenv.RequiresTool(t, "go")
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{len .CgoFiles}}", "./...").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, cgo, _ := strings.Cut(line, " ")
		for _, banned := range []string{"runner", "storage", "net", "cmd"} {
			assert.False(t, strings.HasPrefix(pkg, "github.com/stintdev/stint/"+banned), "images imports %s", pkg)
		}
		if strings.HasPrefix(pkg, "github.com/stintdev/stint/") || !strings.Contains(pkg, ".") {
			continue
		}
		assert.Equal(t, "0", cgo, "%s uses cgo", pkg)
	}
	assert.NotContains(t, string(out), "github.com/lxc/go-lxc")
	own, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{len .CgoFiles}}", "./...").Output()
	require.NoError(t, err)
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		assert.True(t, strings.HasSuffix(line, " 0"), "uses cgo: %s", line)
	}
	assert.Contains(t, string(own), "github.com/stintdev/stint/images/simplestreams ")
	assert.Contains(t, string(own), "github.com/stintdev/stint/images/oci ")
	assert.Contains(t, string(own), "github.com/stintdev/stint/images/pull ")
	// And the whole dependency tree builds without cgo.
	cmd := exec.Command("go", "build", "-o", os.DevNull, "./...")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err = cmd.CombinedOutput()
	assert.NoError(t, err, "CGO_ENABLED=0 build: %s", out)
}

// A second build of the same inputs waits for the first and takes its image.
func TestBuildLockWaitsForCache(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	key := strings.Repeat("ab", 32)
	img, unlock, err := s.cachedOrLock(ctx, key, nil)
	require.NoError(t, err)
	require.Nil(t, img)

	type result struct {
		img *Image
		err error
	}
	got := make(chan result, 1)
	go func() {
		other, _ := Open(s.Dir())
		img, unlock2, err := other.cachedOrLock(ctx, key, []string{"waited"})
		if unlock2 != nil {
			unlock2()
			err = fmt.Errorf("second build got the lock instead of the cached image")
		}
		got <- result{img, err}
	}()
	select {
	case r := <-got:
		t.Fatalf("second build did not wait: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	// The first "build" finishes: an image carrying the key.
	meta := strings.Replace(testMeta, "os: testos", "os: testos\n  "+BuildProperty+": "+key, 1)
	built, err := s.Import(ctx, []string{writeFile(t, t.TempDir(), "i", mkTar(t, unifiedEnts(meta)))}, ImportOptions{})
	require.NoError(t, err)
	unlock()
	r := <-got
	require.NoError(t, r.err)
	assert.Equal(t, built.Fingerprint, r.img.Fingerprint)
	assert.Equal(t, []string{"waited"}, r.img.Aliases)
}

// The busybox binary's hash is remembered by the file's identity: a
// recorded sum is used while the file is unchanged, and any change to the
// file (a write, a truncation, a touch, a replacement by rename, even one
// that keeps its size and mtime) makes it read and hashed again.
func TestBinarySumRecordedByIdentity(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "busybox")
	content := []byte("#!/bin/sh\necho not really busybox\n")
	sumOf := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	// forge records a wrong sum for bin's identity as it is now: a later
	// binarySum that returns it did not read the file.
	forge := func(t *testing.T) {
		got, err := s.binarySum(bin)
		require.NoError(t, err)
		data, _ := os.ReadFile(bin)
		require.Equal(t, sumOf(data), got, "hashed after a change")
		var e sumEntry
		b, err := os.ReadFile(filepath.Join(s.dir, sumFile))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &e))
		e.SHA256 = strings.Repeat("f", 64)
		b, err = json.Marshal(e)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(s.dir, sumFile), b, 0o600))
		again, err := s.binarySum(bin)
		require.NoError(t, err)
		require.Equal(t, e.SHA256, again, "an unchanged file is not hashed again")
	}
	mtime := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func(t *testing.T, p string, b []byte) {
		require.NoError(t, os.WriteFile(p, b, 0o755))
		require.NoError(t, os.Chtimes(p, mtime, mtime))
	}
	for _, c := range []struct {
		name   string
		change func(t *testing.T)
	}{
		{"rewritten, same size and mtime", func(t *testing.T) {
			write(t, bin, []byte(strings.ToUpper(string(content))))
		}},
		{"appended to", func(t *testing.T) {
			f, err := os.OpenFile(bin, os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.WriteString("# more\n")
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}},
		{"touched", func(t *testing.T) {
			now := time.Now()
			require.NoError(t, os.Chtimes(bin, now, now))
		}},
		{"replaced by rename, same size and mtime", func(t *testing.T) {
			tmp := filepath.Join(dir, "new")
			write(t, tmp, []byte(strings.ToLower(string(content))))
			require.NoError(t, os.Rename(tmp, bin))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			write(t, bin, content)
			forge(t)
			c.change(t)
			data, err := os.ReadFile(bin)
			require.NoError(t, err)
			got, err := s.binarySum(bin)
			require.NoError(t, err)
			assert.Equal(t, sumOf(data), got)
		})
	}
}

// A busybox build keys the image by the binary's content: a changed binary
// (same path) gives another image, the unchanged one the cached image.
func TestBuildBusyboxSeesChangedBinary(t *testing.T) {
	host := busyboxBinary(t)
	ctx := context.Background()
	s := newStore(t)
	bin := filepath.Join(t.TempDir(), "busybox")
	data, err := os.ReadFile(host)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, data, 0o755))
	first, err := BuildBusybox(ctx, s, BusyboxOptions{Binary: bin})
	require.NoError(t, err)
	again, err := BuildBusybox(ctx, s, BusyboxOptions{Binary: bin})
	require.NoError(t, err)
	assert.Equal(t, first.Fingerprint, again.Fingerprint)

	// The same busybox with a byte appended (still runs): another build.
	require.NoError(t, os.WriteFile(bin, append(data, 0), 0o755))
	changed, err := BuildBusybox(ctx, s, BusyboxOptions{Binary: bin})
	require.NoError(t, err)
	assert.NotEqual(t, first.Fingerprint, changed.Fingerprint)
	assert.NotEqual(t, first.Properties[BuildProperty], changed.Properties[BuildProperty])
}
