package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/idmap"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/storage"
)

// Caches that a failing job cannot poison (docs/storage.md), through the
// binary on each driver this host runs; zfs and lvm snapshot in the QEMU
// guest (storage/storagetest's SnapshotClone).

// cacheDriver is a [storage] table and the storage.Config it opens.
type cacheDriver struct {
	name, table string
	cfg         func(root string) storage.Config
}

var cacheDrivers = []cacheDriver{
	{"overlay", `driver = "overlay"`, func(root string) storage.Config { return storage.Config{Driver: "overlay", Root: root} }},
	{"dir", `driver = "dir"`, func(root string) storage.Config { return storage.Config{Driver: "dir", Root: root} }},
	{"btrfs", "driver = \"btrfs\"\nsize = \"512MiB\"", func(root string) storage.Config {
		return storage.Config{Driver: "btrfs", Root: root, Size: 512 << 20}
	}},
}

// cacheCLI is a cliFixture whose specs use drv.
type cacheCLI struct {
	*cliFixture
	drv cacheDriver
}

func newCacheCLI(t *testing.T, drv cacheDriver) *cacheCLI {
	t.Helper()
	if drv.name == "btrfs" {
		testenv.RequiresTool(t, "mkfs.btrfs", "btrfs")
	}
	f := newCLI(t)
	if drv.name != "overlay" {
		t.Cleanup(func() {
			// newCLI's cleanup opens overlay: this driver's volumes go
			// through it, then the pool (a btrfs loop file) is unmounted,
			// and the root forgets it.
			_ = exec.Command(f.bin, "--root", f.root, "gc", "--all").Run()
			_ = os.Remove(filepath.Join(f.root, "storage.json"))
			ctx := context.Background()
			if d, err := storage.Open(ctx, drv.cfg(f.root)); err == nil {
				var ids []string
				_ = d.Walk(ctx, func(v storage.Volume) error { ids = append(ids, v.ID); return nil })
				for i := len(ids) - 1; i >= 0; i-- {
					_ = d.Destroy(ctx, ids[i])
				}
				_ = d.Close()
			}
			unmountUnder(t, f.root)
		})
	}
	return &cacheCLI{cliFixture: f, drv: drv}
}

func (f *cacheCLI) spec(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(f.dir, "stint.toml")
	head := strings.Replace(specHead, `driver = "overlay"`, f.drv.table, 1)
	require.NoError(t, os.WriteFile(p, []byte(head+body), 0o644))
	return p
}

// pointer is the cache's current generation as stint recorded it.
func (f *cacheCLI) pointer(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.root, "cache", ".gen", name+".json"))
	require.NoError(t, err)
	var p struct{ Volume, Driver string }
	require.NoError(t, json.Unmarshal(b, &p))
	require.NotEmpty(t, p.Volume)
	require.Equal(t, f.drv.name, p.Driver, "the cache is in another driver's pool")
	return p.Volume
}

// cacheTree is every file of the cache's current generation: path → content
// (directories and links by their mode), read on the host.
func (f *cacheCLI) cacheTree(t *testing.T, name string) map[string]string {
	t.Helper()
	ctx := context.Background()
	d, err := storage.Open(ctx, f.drv.cfg(f.root))
	require.NoError(t, err)
	defer d.Close()
	v, err := d.Get(ctx, f.pointer(t, name))
	require.NoError(t, err)
	out := map[string]string{}
	require.NoError(t, filepath.Walk(v.Rootfs, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(v.Rootfs, p)
		out[rel] = info.Mode().String()
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			out[rel] += " " + string(b)
			return err
		}
		return nil
	}))
	return out
}

// assertOnlyCaches checks that nothing of the jobs is left (containers,
// records, copies, their mounts), and that each cache kept exactly one
// generation: the current one.
func (f *cacheCLI) assertOnlyCaches(t *testing.T, caches ...string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(f.root, "containers"))
	require.NoError(t, err)
	assert.Empty(t, ents, "containers left in the LXC path")
	out, code := f.run(t, "ps")
	require.Equal(t, 0, code, out)
	assert.NotContains(t, out, "stint-", "records left")
	ctx := context.Background()
	d, err := storage.Open(ctx, f.drv.cfg(f.root))
	require.NoError(t, err)
	defer d.Close()
	gens := map[string]bool{}
	require.NoError(t, d.Walk(ctx, func(v storage.Volume) error {
		assert.Equal(t, storage.KindGolden, v.Kind, "copy %s left", v.ID)
		if strings.HasPrefix(v.ID, "cache.") {
			gens[v.ID] = true
		}
		return nil
	}))
	want := map[string]bool{}
	for _, c := range caches {
		want[f.pointer(t, c)] = true
	}
	assert.Equal(t, want, gens, "cache generations beyond the current ones")
	var left []string
	for _, m := range clonesMounted(t, f.root) {
		if m != storage.PoolPath(f.drv.cfg(f.root)) {
			left = append(left, m) // the btrfs pool itself stays mounted
		}
	}
	assert.Empty(t, left, "copy mounts left")
}

// TestCLICacheCommit: a job that fails after writing to its cache leaves
// the cache exactly as it was; one that passes commits; commit = "always"
// commits a failed job's writes, "never" a passed job's none.
func TestCLICacheCommit(t *testing.T) {
	for _, drv := range cacheDrivers {
		t.Run(drv.name, func(t *testing.T) {
			f := newCacheCLI(t, drv)
			p := f.spec(t, `
[profile.c]
mount = [{ type = "cache", name = "deps", target = "/c" }]

[job.seed]
image = "busybox"
profiles = ["c"]
run = ["mkdir /c/sub", "echo v1 > /c/sub/a", "ln -s sub/a /c/link"]

[job.poison]
image = "busybox"
profiles = ["c"]
run = ["echo poison > /c/sub/a", "rm /c/link", "echo junk > /c/junk", "exit 7"]

[job.show]
image = "busybox"
profiles = ["c"]
run = ["echo \"a=$(cat /c/sub/a) junk=$(cat /c/junk 2>/dev/null) ls=$(ls /c | tr '\\n' ,)\""]

[job.always]
image = "busybox"
run = ["echo always > /c/sub/a", "exit 1"]
mount = [{ type = "cache", name = "deps", target = "/c", commit = "always" }]

[job.never]
image = "busybox"
run = ["echo never > /c/sub/a"]
mount = [{ type = "cache", name = "deps", target = "/c", commit = "never" }]
`)
			out, code := f.run(t, "run", p, "seed")
			require.Equal(t, 0, code, out)
			gen, before := f.pointer(t, "deps"), f.cacheTree(t, "deps")
			assert.Equal(t, "-rw-r--r-- v1\n", before["sub/a"], "the passing job's write was not committed")

			out, code = f.run(t, "run", p, "poison")
			require.Equal(t, 1, code, out)
			assert.Equal(t, gen, f.pointer(t, "deps"), "a failed job moved the cache's pointer")
			assert.Equal(t, before, f.cacheTree(t, "deps"), "a failed job changed the cache")
			out, code = f.run(t, "run", p, "show")
			require.Equal(t, 0, code, out)
			assert.Contains(t, out, "a=v1 junk= ls=link,sub,", "a job after the failed one sees its writes")

			out, code = f.run(t, "run", p, "never")
			require.Equal(t, 0, code, out)
			out, code = f.run(t, "run", p, "show")
			require.Equal(t, 0, code, out)
			assert.Contains(t, out, "a=v1 ", `commit = "never" committed`)

			out, code = f.run(t, "run", p, "always")
			require.Equal(t, 1, code, out)
			out, code = f.run(t, "run", p, "show")
			require.Equal(t, 0, code, out)
			assert.Contains(t, out, "a=always ", `commit = "always" did not commit a failed job's writes`)
			f.assertOnlyCaches(t, "deps")
		})
	}
}

// TestCLICacheConcurrent: two jobs on one cache, both running and both
// having written before either looks: neither sees the other's files, each
// commits its own whole view, and the last commit wins.
func TestCLICacheConcurrent(t *testing.T) {
	for _, drv := range cacheDrivers {
		t.Run(drv.name, func(t *testing.T) {
			f := newCacheCLI(t, drv)
			m, err := idmap.Ensure("/etc/subuid", "/etc/subgid")
			require.NoError(t, err)
			// A host directory both jobs write to: their barrier.
			sync := t.TempDir()
			require.NoError(t, os.Chmod(sync, 0o755))
			require.NoError(t, os.Chown(sync, int(m.HostUID), int(m.HostGID)))
			wait := func(me, other string) string {
				return `["echo ` + me + `-half > /c/` + me + `.part", "touch /sync/` + me + `", ` +
					`"i=0; while [ ! -e /sync/` + other + ` ]; do i=$((i+1)); [ $i -lt 1200 ] || exit 9; sleep 0.1; done", ` +
					`"ls /c | tr '\\n' , > /sync/` + me + `.saw", "echo ` + me + `-whole > /c/` + me + `.part", "mv /c/` + me + `.part /c/` + me + `"]`
			}
			p := f.spec(t, `
[job.seed]
image = "busybox"
run = ["echo base > /c/base"]
mount = [{ type = "cache", name = "shared", target = "/c" }]

[job.a]
image = "busybox"
run = `+wait("a", "b")+`
mount = [{ type = "cache", name = "shared", target = "/c" }, { source = "`+sync+`", target = "/sync" }]

[job.b]
image = "busybox"
run = `+wait("b", "a")+`
mount = [{ type = "cache", name = "shared", target = "/c" }, { source = "`+sync+`", target = "/sync" }]
`)
			out, code := f.run(t, "run", p, "seed")
			require.Equal(t, 0, code, out)
			out, code = f.run(t, "run", "-j", "2", p, "a", "b")
			require.Equal(t, 0, code, out)
			for me, other := range map[string]string{"a": "b", "b": "a"} {
				saw, err := os.ReadFile(filepath.Join(sync, me+".saw"))
				require.NoError(t, err)
				assert.Equal(t, me+".part,base,", string(saw), "job %s saw job %s's files", me, other)
			}
			tree := f.cacheTree(t, "shared")
			_, hasA := tree["a"]
			_, hasB := tree["b"]
			assert.True(t, hasA != hasB, "the cache holds one job's whole view, not a mix: %v", tree)
			assert.NotContains(t, tree, "a.part")
			assert.NotContains(t, tree, "b.part")
			assert.Contains(t, tree, "base")
			f.assertOnlyCaches(t, "shared")
		})
	}
}

// TestCLICacheKill9ThenGC: a job killed with its stint (kill -9) commits
// nothing, and gc removes its copy of the cache.
func TestCLICacheKill9ThenGC(t *testing.T) {
	for _, drv := range cacheDrivers {
		t.Run(drv.name, func(t *testing.T) {
			f := newCacheCLI(t, drv)
			p := f.spec(t, `
[job.seed]
image = "busybox"
run = ["echo v1 > /c/a"]
mount = [{ type = "cache", name = "k", target = "/c", commit = "always" }]

[job.long]
image = "busybox"
run = ["echo half > /c/a", "echo wrote", "sleep 600"]
mount = [{ type = "cache", name = "k", target = "/c", commit = "always" }]
`)
			out, code := f.run(t, "run", p, "seed")
			require.Equal(t, 0, code, out)
			before := f.cacheTree(t, "k")
			c := f.startUntil(t, "[long] wrote", "run", p, "long")
			require.NoError(t, c.Process.Signal(syscall.SIGKILL))
			_ = c.Wait()
			out, code = f.run(t, "gc")
			require.Equal(t, 0, code, out)
			assert.Regexp(t, regexp.MustCompile(`removed stint-long-`), out)
			assert.Equal(t, before, f.cacheTree(t, "k"), "a killed job changed the cache")
			f.assertOnlyCaches(t, "k")

			// A crash between a commit's snapshot and its pointer leaves a
			// generation no pointer names: gc removes it, and only it.
			ctx := context.Background()
			d, err := storage.Open(ctx, drv.cfg(f.root))
			require.NoError(t, err)
			_, err = d.CreateGolden(ctx, "cache.u.k.0123456789ab", storage.SourceFunc(func(context.Context, string) error { return nil }), storage.GoldenOptions{})
			require.NoError(t, err)
			require.NoError(t, d.Close())
			out, code = f.run(t, "gc")
			require.Equal(t, 0, code, out)
			assert.Contains(t, out, "cache generation cache.u.k.0123456789ab")
			assert.Equal(t, before, f.cacheTree(t, "k"))
			f.assertOnlyCaches(t, "k")
		})
	}
}

// TestCLICacheLongLived: a long-lived container gets its own copy of the
// cache when it is made, keeps it across a restart, never commits it, and
// `down` removes it.
func TestCLICacheLongLived(t *testing.T) {
	f := newCacheCLI(t, cacheDrivers[0])
	p := f.spec(t, `
[job.seed]
image = "busybox"
run = ["echo v1 > /c/a"]
mount = [{ type = "cache", name = "box", target = "/c" }]

[container.box]
image = "busybox"
command = ["/bin/sh", "-c", "echo box >> /c/a; exec sleep 600"]
mount = [{ type = "cache", name = "box", target = "/c" }]
`)
	out, code := f.run(t, "run", p, "seed")
	require.Equal(t, 0, code, out)
	before := f.cacheTree(t, "box")
	var content string
	copies := func() []string {
		ctx := context.Background()
		d, err := storage.Open(ctx, f.drv.cfg(f.root))
		require.NoError(t, err)
		defer d.Close()
		var ids []string
		require.NoError(t, d.Walk(ctx, func(v storage.Volume) error {
			if v.Kind == storage.KindClone && strings.Contains(v.ID, ".cache") {
				ids = append(ids, v.ID)
				b, err := os.ReadFile(filepath.Join(v.Rootfs, "a"))
				require.NoError(t, err)
				content = string(b)
			}
			return nil
		}))
		return ids
	}
	out, code = f.run(t, "apply", p)
	require.Equal(t, 0, code, out)
	first := copies()
	require.Len(t, first, 1, "the container's own copy")
	// Stop and start again: the same copy, with what the first start wrote.
	body := mustRead(t, p)
	require.NoError(t, os.WriteFile(p, []byte(strings.Replace(body, "[container.box]", "[container.box]\nstate = \"stopped\"", 1)), 0o644))
	out, code = f.run(t, "apply", p)
	require.Equal(t, 0, code, out)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	out, code = f.run(t, "apply", p)
	require.Equal(t, 0, code, out)
	assert.Equal(t, first, copies(), "a restart made a new copy")
	// The second start's command appends once it runs.
	assert.Eventually(t, func() bool { copies(); return content == "v1\nbox\nbox\n" }, time.Minute, 100*time.Millisecond,
		"the copy did not keep the first start's write: %q", content)
	out, code = f.run(t, "down", p)
	require.Equal(t, 0, code, out)
	assert.Empty(t, copies(), "down left the container's copy")
	assert.Equal(t, before, f.cacheTree(t, "box"), "a long-lived container committed")
	f.assertOnlyCaches(t, "box")
}

// TestCLICacheSeededFromOlderStint: a cache an older stint kept as a shared
// directory (<root>/cache/<name>, owned by the container's root) seeds the
// first generation once; the directory itself is left as it was.
func TestCLICacheSeededFromOlderStint(t *testing.T) {
	f := newCacheCLI(t, cacheDrivers[0])
	m, err := idmap.Ensure("/etc/subuid", "/etc/subgid")
	require.NoError(t, err)
	old := filepath.Join(f.root, "cache", "legacy")
	require.NoError(t, os.MkdirAll(old, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(old, "kept"), []byte("from-before\n"), 0o644))
	for _, p := range []string{old, filepath.Join(old, "kept")} {
		require.NoError(t, os.Chown(p, int(m.HostUID), int(m.HostGID)))
	}
	p := f.spec(t, `
[job.use]
image = "busybox"
run = ["cat /c/kept", "echo new > /c/kept"]
mount = [{ type = "cache", name = "legacy", target = "/c" }]
`)
	out, code := f.run(t, "run", p)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "[use] from-before")
	assert.Equal(t, "-rw-r--r-- new\n", f.cacheTree(t, "legacy")["kept"])
	b, err := os.ReadFile(filepath.Join(old, "kept"))
	require.NoError(t, err)
	assert.Equal(t, "from-before\n", string(b), "the old directory was written")
	f.assertOnlyCaches(t, "legacy")
}

// TestCLICachePrivilegedApart: a privileged job's cache of the same name is
// kept apart (its files belong to host root) and commits the same way.
func TestCLICachePrivilegedApart(t *testing.T) {
	f := newCacheCLI(t, cacheDrivers[0])
	p := f.spec(t, `
[job.priv]
image = "busybox"
privileged = true
run = ["cat /c/who 2>/dev/null || true", "echo priv > /c/who"]
mount = [{ type = "cache", name = "same", target = "/c" }]

[job.unpriv]
image = "busybox"
run = ["echo \"saw=$(cat /c/who 2>/dev/null)\"", "echo unpriv > /c/who"]
mount = [{ type = "cache", name = "same", target = "/c" }]
`)
	out, code := f.run(t, "run", p, "priv")
	require.Equal(t, 0, code, out)
	out, code = f.run(t, "run", p, "unpriv")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "[unpriv] saw=\n", "an unprivileged job saw the privileged job's cache")
	out, code = f.run(t, "run", p, "priv")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "[priv] priv\n", "the privileged job's commit was lost")
	b, err := os.ReadFile(filepath.Join(f.root, "cache", ".privileged", ".gen", "same.json"))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"volume":"cache.p.same.`)
	assert.Contains(t, f.cacheTree(t, "same")["who"], "unpriv")
}
