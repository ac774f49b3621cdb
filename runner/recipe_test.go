package runner_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/spec"
)

// countingRuntime is the real runtime, counting the containers it creates:
// a cache hit must create none.
type countingRuntime struct {
	container.Runtime
	creates atomic.Int32
}

func (c *countingRuntime) Create(ctx context.Context, name string, cfg container.Config) error {
	c.creates.Add(1)
	return c.Runtime.Create(ctx, name, cfg)
}

// recipeFixture is a runner whose images are a busybox image and recipes
// over ../testdata/recipes, copied so that a test may change them.
type recipeFixture struct {
	*fixture
	dir   string // the recipe's files
	store *images.Store
	rt    *countingRuntime
}

func newRecipeFixture(t *testing.T) *recipeFixture {
	f := newRunner(t)
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS("../testdata/recipes")))
	require.NoError(t, os.Chmod(filepath.Join(dir, "files", "motd"), 0o640))
	rt := &countingRuntime{Runtime: f.r.Runtime}
	f.r.Runtime = rt
	return &recipeFixture{fixture: f, dir: dir, store: f.r.Images.(*runner.StoreImages).Store, rt: rt}
}

// set is the spec set: busybox, then the given recipes.
func (f *recipeFixture) set(recipes ...spec.Image) *spec.Set {
	return &spec.Set{Images: append([]spec.Image{{Name: "busybox", Builder: "busybox"}}, recipes...)}
}

// custom is the recipe most tests build: two hooks and two files.
func (f *recipeFixture) custom() spec.Image {
	return spec.Image{
		Name: "custom", From: "busybox",
		Hooks: []string{filepath.Join(f.dir, "hooks", "01-setup.sh"), filepath.Join(f.dir, "hooks", "02-check.sh")},
		Files: map[string]string{
			"/etc/motd":            filepath.Join(f.dir, "files", "motd"),
			"/usr/local/bin/hello": filepath.Join(f.dir, "files", "hello"),
		},
		Properties: map[string]string{"description": "a recipe test image"},
	}
}

// build builds image name of set with a fresh resolver (no in-process cache).
func (f *recipeFixture) build(t *testing.T, set *spec.Set, name string) (*images.Image, error) {
	t.Helper()
	si := &runner.StoreImages{Store: f.store, Set: set, Recipes: f.r}
	return si.Build(context.Background(), name, nil)
}

// TestRecipeBuild builds a recipe on busybox (files, hooks), checks the
// image (owners unshifted, modes kept, base templates, the build key), runs
// a job on it, and checks that nothing of the build is left.
func TestRecipeBuild(t *testing.T) {
	f := newRecipeFixture(t)
	set := f.set(f.custom())
	img, err := f.build(t, set, "custom")
	require.NoError(t, err, f.out.String())
	out := f.out.String()
	assert.Contains(t, out, "[image custom] hook ran in custom\n")
	assert.Contains(t, out, "[image custom] hello from a copied file\n")
	assert.Equal(t, int32(1), f.rt.creates.Load(), "one build container")

	base, err := f.build(t, set, "busybox")
	require.NoError(t, err)
	assert.Equal(t, base.Architecture, img.Architecture)
	assert.Equal(t, "a recipe test image", img.Description())
	assert.Equal(t, "busybox", img.Properties["os"], "the base's properties are kept")
	assert.Contains(t, img.Templates, "/etc/hostname", "the base's templates are kept")
	assert.Len(t, img.Properties[images.BuildProperty], 64)
	assert.NotEqual(t, base.Properties[images.BuildProperty], img.Properties[images.BuildProperty])

	// The tarball holds container ids, not the build container's host ids.
	hdrs := imageHeaders(t, img.Path())
	for _, name := range []string{"rootfs/etc/hooked", "rootfs/etc/motd", "rootfs/usr/local/bin/hello", "rootfs/usr/local/bin", "rootfs/bin/busybox"} {
		require.Contains(t, hdrs, name)
		assert.Equal(t, 0, hdrs[name].Uid, "%s: uid", name)
		assert.Equal(t, 0, hdrs[name].Gid, "%s: gid", name)
	}
	require.Contains(t, hdrs, "rootfs/home/u")
	assert.Equal(t, 1000, hdrs["rootfs/home/u"].Uid, "a hook's chown is kept, unshifted")
	assert.Equal(t, int64(0o640), hdrs["rootfs/etc/motd"].Mode&0o7777, "a file's mode is kept")
	assert.Equal(t, int64(0o755), hdrs["rootfs/usr/local/bin/hello"].Mode&0o7777)
	assert.Equal(t, int64(0o755), hdrs["rootfs/usr/local/bin"].Mode&0o7777, "missing parents are made 0755")
	for name := range hdrs {
		assert.False(t, strings.HasPrefix(name, "rootfs/.stint"), "build leftover %s in the image", name)
	}
	f.assertClean(t)

	// A job on the built image sees the hook's and the files' work.
	f.r.Images = &runner.StoreImages{Store: f.store, Set: set, Recipes: f.r}
	j := job("use", "cat /etc/motd /etc/hooked", "hello", "stat -c %u:%a /home/u /etc/motd")
	j.Image = "custom"
	res := f.r.RunJob(context.Background(), j)
	require.True(t, res.Passed(), "%+v\n%s", res, f.out.String())
	out = f.out.String()
	assert.Contains(t, out, "[use] welcome to a stint recipe\n")
	assert.Contains(t, out, "[use] from-hook\n")
	assert.Contains(t, out, "[use] hello from a copied file\n")
	assert.Contains(t, out, "[use] 1000:755\n[use] 0:640\n")
	f.assertClean(t)
}

// TestRecipeCache: an unchanged recipe is a cache hit (no container); a
// changed hook rebuilds; a recipe on a recipe builds both; concurrent builds
// of one recipe build once.
func TestRecipeCache(t *testing.T) {
	f := newRecipeFixture(t)
	set := f.set(f.custom())
	first, err := f.build(t, set, "custom")
	require.NoError(t, err, f.out.String())
	require.Equal(t, int32(1), f.rt.creates.Load())

	again, err := f.build(t, set, "custom")
	require.NoError(t, err)
	assert.Equal(t, first.Fingerprint, again.Fingerprint)
	assert.Equal(t, int32(1), f.rt.creates.Load(), "a cache hit starts no container")

	// Same contents under another path: still a hit.
	moved := filepath.Join(t.TempDir(), "renamed.sh")
	data, err := os.ReadFile(filepath.Join(f.dir, "hooks", "01-setup.sh"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(moved, data, 0o644))
	def := f.custom()
	def.Hooks[0] = moved
	again, err = f.build(t, f.set(def), "custom")
	require.NoError(t, err)
	assert.Equal(t, first.Fingerprint, again.Fingerprint)
	assert.Equal(t, int32(1), f.rt.creates.Load())

	// A changed hook rebuilds.
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "hooks", "02-check.sh"), append(data, []byte("echo changed > /etc/changed\n")...), 0o644))
	changed, err := f.build(t, set, "custom")
	require.NoError(t, err, f.out.String())
	assert.NotEqual(t, first.Fingerprint, changed.Fingerprint)
	assert.NotEqual(t, first.Properties[images.BuildProperty], changed.Properties[images.BuildProperty])
	assert.Equal(t, int32(2), f.rt.creates.Load())
	assert.Contains(t, imageHeaders(t, changed.Path()), "rootfs/etc/changed")

	// A recipe on that recipe: its base is found in the cache, it builds.
	check := filepath.Join(t.TempDir(), "check.sh")
	require.NoError(t, os.WriteFile(check, []byte("test -f /etc/changed && echo on top > /etc/layer2\n"), 0o644))
	top := spec.Image{Name: "top", From: "custom", Hooks: []string{check}}
	layered, err := f.build(t, f.set(f.custom(), top), "top")
	require.NoError(t, err, f.out.String())
	assert.Equal(t, int32(3), f.rt.creates.Load(), "the base was cached, only top was built")
	assert.Contains(t, imageHeaders(t, layered.Path()), "rootfs/etc/layer2")
	assert.Equal(t, "busybox", layered.Properties["os"], "properties pass down from the base")
	assert.Equal(t, "top (recipe on a recipe test image, built by stint)", layered.Description())

	// A base named by a fingerprint prefix in the store, not by the spec.
	byRef := spec.Image{Name: "byref", From: layered.Fingerprint[:12], Files: map[string]string{"/etc/issue": filepath.Join(f.dir, "files", "motd")}}
	onRef, err := f.build(t, f.set(byRef), "byref")
	require.NoError(t, err, f.out.String())
	assert.Equal(t, int32(4), f.rt.creates.Load())
	hdrs := imageHeaders(t, onRef.Path())
	assert.Contains(t, hdrs, "rootfs/etc/layer2")
	assert.Contains(t, hdrs, "rootfs/etc/issue")

	// Concurrent builds of one new recipe: one container, one image.
	hook := filepath.Join(t.TempDir(), "slow.sh")
	require.NoError(t, os.WriteFile(hook, []byte("sleep 1\necho concurrent > /etc/concurrent\n"), 0o644))
	conc := f.set(spec.Image{Name: "conc", From: "busybox", Hooks: []string{hook}})
	var wg sync.WaitGroup
	fps := make([]string, 3)
	errs := make([]error, 3)
	for i := range fps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, err := f.build(t, conc, "conc")
			errs[i] = err
			if err == nil {
				fps[i] = img.Fingerprint
			}
		}()
	}
	wg.Wait()
	for i := range fps {
		require.NoError(t, errs[i])
		assert.Equal(t, fps[0], fps[i])
	}
	assert.Equal(t, int32(5), f.rt.creates.Load(), "concurrent builds of one recipe build once")
	f.assertClean(t)
}

// TestRecipeFailures: a failing hook fails the build with its name and exit
// status and leaves nothing behind: no container, clone, record, image or
// temporary file. Packages on a base without a package manager are refused.
func TestRecipeFailures(t *testing.T) {
	f := newRecipeFixture(t)
	_, err := f.build(t, f.set(), "busybox")
	require.NoError(t, err)
	before, err := f.store.List()
	require.NoError(t, err)

	failing := f.custom()
	failing.Hooks = append(failing.Hooks, filepath.Join(f.dir, "hooks", "fail.sh"))
	_, err = f.build(t, f.set(failing), "custom")
	require.Error(t, err)
	var hook *runner.HookError
	require.True(t, errors.As(err, &hook), "%v", err)
	assert.Equal(t, "custom", hook.Image)
	assert.Equal(t, 3, hook.Index)
	assert.Equal(t, 3, hook.Status.Code)
	assert.Contains(t, err.Error(), "image custom: hook 3 "+filepath.Join(f.dir, "hooks", "fail.sh")+": exit 3")
	assert.Contains(t, f.out.String(), "[image custom] about to fail\n")

	after, err := f.store.List()
	require.NoError(t, err)
	assert.Len(t, after, len(before), "no image from a failed build")
	ents, err := os.ReadDir(f.store.Dir())
	require.NoError(t, err)
	for _, e := range ents {
		assert.False(t, strings.HasPrefix(e.Name(), ".tmp-"), "temporary file %s left in the store", e.Name())
	}
	f.assertClean(t)

	pkgs := spec.Image{Name: "pkgs", From: "busybox", Packages: []string{"make"}}
	_, err = f.build(t, f.set(pkgs), "pkgs")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "image pkgs: packages make: the base image")
	assert.Contains(t, err.Error(), "has no package manager stint knows (apt-get, apk, dnf)")
	f.assertClean(t)

	// No runner, no recipe: a clear error, not a crash.
	si := &runner.StoreImages{Store: f.store, Set: f.set(f.custom())}
	_, err = si.ResolveImage(context.Background(), "custom")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "image custom: a recipe is built in a container, and no runner is configured")
}

// TestRecipeCancelled: cancelling a build (Ctrl-C) kills its running hook
// and tears everything down.
func TestRecipeCancelled(t *testing.T) {
	f := newRecipeFixture(t)
	hook := filepath.Join(t.TempDir(), "slow.sh")
	require.NoError(t, os.WriteFile(hook, []byte("echo sleeping\nsleep 60\necho never > /etc/never\n"), 0o644))
	set := f.set(spec.Image{Name: "slow", From: "busybox", Hooks: []string{hook}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		si := &runner.StoreImages{Store: f.store, Set: set, Recipes: f.r}
		_, err := si.Build(ctx, "slow", nil)
		done <- err
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(f.out.String(), "[image slow] sleeping") {
		require.True(t, time.Now().Before(deadline), "the hook never started: %s", f.out.String())
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.Contains(t, err.Error(), "image slow: aborted")
		assert.Less(t, time.Since(start), 30*time.Second)
	case <-time.After(60 * time.Second):
		t.Fatal("the build outlived its cancellation")
	}
	imgs, err := f.store.List()
	require.NoError(t, err)
	for _, img := range imgs {
		assert.NotContains(t, img.Description(), "slow", "an image from a cancelled build")
	}
	f.assertClean(t)
}

// imageHeaders reads the tar headers of a unified image (gzip, as built).
func imageHeaders(t *testing.T, file string) map[string]*tar.Header {
	t.Helper()
	fh, err := os.Open(file)
	require.NoError(t, err)
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	require.NoError(t, err)
	out := map[string]*tar.Header{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out[strings.TrimSuffix(h.Name, "/")] = h
	}
}

// TestRecipeDebianPackages builds a recipe with packages on a debootstrap
// image: apt-get in the unprivileged build container, on the host network.
// It takes minutes (debootstrap), so not in -short.
func TestRecipeDebianPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("debootstrap takes minutes; not in -short")
	}
	f := newRecipeFixture(t)
	testenv.RequiresTool(t, "debootstrap", "dpkg")
	if _, err := images.HostMirror(); err != nil {
		testenv.Unavailable(t, err.Error())
	}
	hook := filepath.Join(t.TempDir(), "check.sh")
	require.NoError(t, os.WriteFile(hook, []byte("set -e\nhello | tee /etc/hello-said\n"), 0o644))
	set := f.set(
		spec.Image{Name: "debian", Builder: "debootstrap", Suite: "bookworm", Variant: "minbase"},
		spec.Image{Name: "tools", From: "debian", Packages: []string{"hello"}, Hooks: []string{hook}},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	si := &runner.StoreImages{Store: f.store, Set: set, Recipes: f.r}
	img, err := si.Build(ctx, "tools", nil)
	require.NoError(t, err, f.out.String())
	assert.Contains(t, f.out.String(), "[image tools] Hello, world!\n")
	assert.Equal(t, "debian", img.Properties["os"])
	assert.Equal(t, "bookworm", img.Properties["release"])

	hdrs := imageHeaders(t, img.Path())
	require.Contains(t, hdrs, "rootfs/usr/bin/hello")
	assert.Equal(t, 0, hdrs["rootfs/usr/bin/hello"].Uid)
	assert.Contains(t, hdrs, "rootfs/etc/hello-said")
	// apt's own user keeps its id (42 in Debian), not a host id.
	if h, ok := hdrs["rootfs/var/cache/apt/archives/partial"]; ok {
		assert.Less(t, h.Uid, 65536, "owner of apt's partial directory is a container id")
	}
	for name := range hdrs {
		assert.False(t, strings.HasPrefix(name, "rootfs/var/lib/apt/lists/") && strings.HasSuffix(name, "_Packages"), "apt lists kept: %s", name)
	}
	f.assertClean(t)
}
