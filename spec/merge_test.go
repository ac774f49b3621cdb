package spec

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loadText loads one spec written to a temporary directory.
func loadText(t *testing.T, text string, opts Options) (*Set, error) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "src"), 0o755))
	p := filepath.Join(dir, "spec.toml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return Load([]string{p}, opts)
}

func mustLoad(t *testing.T, text string) *Set {
	t.Helper()
	set, err := loadText(t, text, Options{})
	require.NoError(t, err)
	return set
}

func TestMergeRules(t *testing.T) {
	set := mustLoad(t, `
[profile.a]
env = { A = "a", SHARED = "a" }
limits = { memory = "1GiB", pids = 10 }
raw = { "lxc.x" = "a", "lxc.y" = "a" }
user = "alice"
workdir = "/a"
timeout = "1m"
privileged = true
network = { mode = "bridge", bridge = "br-a" }
mount = [{ source = "src", target = "/src" }, { type = "tmpfs", target = "/tmp", size = "1MiB" }]
artifact = [{ path = "/a.log" }]

[profile.b]
env = { B = "b", SHARED = "b" }
limits = { cpus = 2 }
raw = { "lxc.y" = "b" }
user = "bob"
privileged = false
network = "host"
mount = [{ type = "cache", name = "c", target = "/src" }]
artifact = [{ path = "/b.log", when = "always" }]

[job.j]
image = "busybox"
profiles = ["a", "b"]
env = { SHARED = "job" }
limits = { pids = 99 }
timeout = "3m"
run = ["true"]
mount = [{ type = "tmpfs", target = "/tmp", size = "2MiB" }, { type = "tmpfs", target = "/run" }]
artifact = [{ path = "/j.log", when = "on_failure" }]
`)
	require.Len(t, set.Jobs, 1)
	j := set.Jobs[0]
	// Maps: key by key, later layers winning.
	assert.Equal(t, map[string]string{"A": "a", "B": "b", "SHARED": "job"}, j.Env)
	assert.Equal(t, map[string]string{"lxc.x": "a", "lxc.y": "b"}, j.Raw)
	assert.Equal(t, Limits{Memory: 1 << 30, CPUs: 2, Pids: 99}, j.Limits)
	// Scalars: the last one set wins; unset ones do not reset.
	assert.Equal(t, "bob", j.User)
	assert.Equal(t, "/a", j.Workdir)
	assert.Equal(t, Duration(180e9), j.Timeout)
	assert.False(t, j.Privileged, "b's explicit false wins over a's true")
	assert.Equal(t, Network{Mode: "host"}, j.Network, "network is one value: b's replaces a's whole")
	// Mounts append; a later mount with the same target replaces the
	// earlier in its place.
	require.Len(t, j.Mounts, 3)
	assert.Equal(t, Mount{Type: MountCache, Name: "c", Target: "/src"}, j.Mounts[0])
	assert.Equal(t, Mount{Type: MountTmpfs, Target: "/tmp", Size: 2 << 20}, j.Mounts[1])
	assert.Equal(t, Mount{Type: MountTmpfs, Target: "/run"}, j.Mounts[2])
	// Artifacts append.
	assert.Equal(t, []Artifact{
		{Path: "/a.log", When: WhenOnSuccess},
		{Path: "/b.log", When: WhenAlways},
		{Path: "/j.log", When: WhenOnFailure},
	}, j.Artifacts)
	assert.Equal(t, []string{"a", "b"}, j.Profiles)
}

func TestMergeContainerIgnoresJobOnlyKeys(t *testing.T) {
	set := mustLoad(t, `
[profile.p]
workdir = "/w"
timeout = "1m"
env = { P = "1" }
network = "bridge"

[container.c]
image = "busybox"
profiles = ["p"]
ports = ["8080:80"]
`)
	require.Len(t, set.Containers, 1)
	c := set.Containers[0]
	assert.Equal(t, map[string]string{"P": "1"}, c.Env)
	assert.Equal(t, "bridge", c.Network.Mode)
	assert.Equal(t, StateRunning, c.State)
	assert.Equal(t, []Port{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}, c.Ports)
}

func TestMatrixSubstitution(t *testing.T) {
	set := mustLoad(t, `
[profile.p]
env = { FROM_PROFILE = "${v}" }

[job.j]
image = "img-${v}"
profiles = ["p"]
workdir = "/w/${v}"
user = "u${v}"
run = "echo ${v} $${v}"
env = { E = "${v}" }
raw = { "lxc.r" = "${v}" }
network = { mode = "bridge", bridge = "br${v}" }
mount = [{ source = "src", target = "/m/${v}" }, { type = "cache", name = "c${v}", target = "/c" }]
artifact = [{ path = "/out/${v}", dest = "d/${v}" }]
matrix = { v = ["1", "2"] }
`)
	require.Len(t, set.Jobs, 2)
	j := set.Jobs[1]
	assert.Equal(t, "j[v=2]", j.Name)
	assert.Equal(t, "j", j.Base)
	assert.Equal(t, map[string]string{"v": "2"}, j.Matrix)
	assert.Equal(t, "img-2", j.Image)
	assert.Equal(t, "/w/2", j.Workdir)
	assert.Equal(t, "u2", j.User)
	assert.Equal(t, []string{"echo 2 ${v}"}, j.Run)
	assert.Equal(t, map[string]string{"E": "2", "FROM_PROFILE": "2"}, j.Env)
	assert.Equal(t, map[string]string{"lxc.r": "2"}, j.Raw)
	assert.Equal(t, "br2", j.Network.Bridge)
	assert.Equal(t, "/m/2", j.Mounts[0].Target)
	assert.Equal(t, "c2", j.Mounts[1].Name)
	assert.Equal(t, Artifact{Path: "/out/2", Dest: "d/2", When: WhenOnSuccess}, j.Artifacts[0])
	// The profile is shown as written.
	assert.Equal(t, "${v}", set.Profiles[0].Env["FROM_PROFILE"])
}

func TestUndefinedMatrixKeyInProfile(t *testing.T) {
	_, err := loadText(t, `
[profile.p]
env = { X = "${nope}" }

[job.a]
image = "busybox"
profiles = ["p"]
run = ["true"]
matrix = { n = ["1", "2"] }

[job.b]
image = "busybox"
profiles = ["p"]
run = ["true"]
`, Options{})
	var perr *Errors
	require.True(t, errors.As(err, &perr))
	require.Len(t, perr.Problems, 1, "reported once, at the profile, however many jobs use it: %v", err)
	assert.Equal(t, "profile.p.env.X", perr.Problems[0].Path)
	assert.Equal(t, 3, perr.Problems[0].Line)
}

func TestRelativePathsResolveAgainstSpecFile(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.MkdirAll(filepath.Join(sub, "data"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(sub, "h.sh"), nil, 0o755))
	p := filepath.Join(sub, "s.toml")
	require.NoError(t, os.WriteFile(p, []byte(`
[storage]
path = "pool"
[image.i]
builder = "busybox"
hooks = ["h.sh"]
[job.j]
image = "i"
run = ["true"]
mount = [{ source = "data", target = "/d" }]
`), 0o644))
	t.Chdir(dir) // the spec's directory counts, not the working directory
	set, err := Load([]string{"sub/s.toml"}, Options{})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(sub, "pool"), set.Storage.Path)
	assert.Equal(t, []string{filepath.Join(sub, "h.sh")}, set.Images[0].Hooks)
	assert.Equal(t, filepath.Join(sub, "data"), set.Jobs[0].Mounts[0].Source)
	assert.Equal(t, []string{p}, set.Files)
	assert.Equal(t, "sub", set.Name, "the set is named after the directory")
}

func TestImageRefsWithoutStore(t *testing.T) {
	for ref, ok := range map[string]bool{
		"debian/12": true, "ci": true, "images:alpine/3.20": true, "0123456789abcdef": true,
		"Not A Ref!": false, "": false, "/abs": false,
	} {
		_, err := loadText(t, "[job.j]\nimage = \""+ref+"\"\nrun = [\"true\"]\n", Options{})
		assert.Equal(t, ok, err == nil, "%q: %v", ref, err)
	}
	// With a store, only what it knows passes, with a did-you-mean over the set.
	_, err := loadText(t, "[image.debian]\nbuilder = \"busybox\"\n[job.j]\nimage = \"debain\"\nrun = [\"true\"]\n",
		Options{ImageKnown: func(string) bool { return false }})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `spec.toml:4:1: job.j.image: unknown image "debain": not an [image.*] of this set nor in the local image store; did you mean "debian"?`)
}

func TestSelectJobs(t *testing.T) {
	set := mustLoad(t, `
[job.test]
image = "busybox"
run = ["true"]
matrix = { go = ["1.22", "1.23"] }
[job.lint]
image = "busybox"
run = ["true"]
`)
	names := func(js []Job) []string {
		var out []string
		for _, j := range js {
			out = append(out, j.Name)
		}
		return out
	}
	all, err := SelectJobs(set, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"test[go=1.22]", "test[go=1.23]", "lint"}, names(all))

	some, err := SelectJobs(set, []string{"lint", "test[go=1.23]"})
	require.NoError(t, err)
	assert.Equal(t, []string{"test[go=1.23]", "lint"}, names(some), "in the set's order")

	base, err := SelectJobs(set, []string{"test", "test[go=1.22]"})
	require.NoError(t, err)
	assert.Equal(t, []string{"test[go=1.22]", "test[go=1.23]"}, names(base), "a base name selects all variants, once")

	_, err = SelectJobs(set, []string{"tset"})
	require.ErrorIs(t, err, ErrUnknownJob)
	assert.EqualError(t, err, `unknown job "tset" (did you mean "test"?); known jobs: test, test[go=1.22], test[go=1.23], lint`)
	_, err = SelectJobs(set, []string{"zzz"})
	assert.EqualError(t, err, `unknown job "zzz"; known jobs: test, test[go=1.22], test[go=1.23], lint`, "nothing close: no hint")
}

func TestContainerHash(t *testing.T) {
	const text = `
[profile.p]
env = { A = "1" }
[container.c]
image = "busybox"
profiles = ["p"]
`
	a := mustLoad(t, text).Containers[0]
	b := mustLoad(t, "# a comment moves every line\n\n"+text).Containers[0]
	require.NotEqual(t, a.Pos.Line, b.Pos.Line)
	assert.Equal(t, a.Hash(), b.Hash(), "where a container is written does not change it")
	assert.Len(t, a.Hash(), 64)

	inline := mustLoad(t, "[container.c]\nimage = \"busybox\"\nenv = { A = \"1\" }\n").Containers[0]
	assert.Equal(t, a.Hash(), inline.Hash(), "the same result through a profile or inline")

	changed := mustLoad(t, "[container.c]\nimage = \"busybox\"\nenv = { A = \"2\" }\n").Containers[0]
	assert.NotEqual(t, a.Hash(), changed.Hash())
	ported := a
	ported.Ports = []Port{{HostPort: 1, ContainerPort: 1, Proto: "tcp"}}
	assert.NotEqual(t, a.Hash(), ported.Hash())

	stopped := a
	stopped.State = StateStopped
	assert.Equal(t, a.Hash(), stopped.Hash(), "starting or stopping is not a change of the container")
	empty := a
	empty.Mounts, empty.Raw = []Mount{}, map[string]string{}
	assert.Equal(t, a.Hash(), empty.Hash(), "empty and absent are the same")
}

// TestContainerHashDevKeys: what shapes a dev box (host_user, home,
// ssh_agent) changes its hash; where and as whom `stint shell` enters
// (workdir, user) does not, so a profile's workdir, which now applies to
// containers, recreates none.
func TestContainerHashDevKeys(t *testing.T) {
	base := mustLoad(t, "[container.c]\nimage = \"busybox\"\n").Containers[0]
	for _, extra := range []string{"host_user = true", "host_user = true\nhome = \"persist\"", "host_user = true\nssh_agent = true"} {
		c := mustLoad(t, "[container.c]\nimage = \"busybox\"\n"+extra+"\n").Containers[0]
		assert.NotEqual(t, base.Hash(), c.Hash(), extra)
	}
	for _, extra := range []string{`workdir = "/src"`, `user = "dev"`, `home = "image"`} {
		c := mustLoad(t, "[container.c]\nimage = \"busybox\"\n"+extra+"\n").Containers[0]
		assert.Equal(t, base.Hash(), c.Hash(), extra)
	}
}
