package reconcile

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/spec"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func web() spec.Container {
	return spec.Container{
		Name: "web", Image: "debian", State: spec.StateRunning,
		Command: []string{"/usr/sbin/nginx", "-g", "daemon off;"},
		Env:     map[string]string{"A": "1"},
		Limits:  spec.Limits{Memory: 512 << 20, CPUs: 1},
		Network: spec.Network{Mode: "none"},
		Pos:     spec.Pos{File: "/x/a.toml", Line: 3},
	}
}

// observed is c as it exists after a successful apply of c.
func observed(set string, c spec.Container, st Status) Observed {
	return Observed{Name: c.Name, Set: set, Hash: Hash(c), Status: st, Spec: &c}
}

// startedFrom is o as it runs when it was last started from c.
func startedFrom(o Observed, c spec.Container) Observed {
	o.Started = &c
	return o
}

func with(c spec.Container, f func(*spec.Container)) spec.Container {
	c.Env = cloneMap(c.Env)
	c.Command = append([]string(nil), c.Command...)
	f(&c)
	return c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestHashIgnoresIdentityAndState(t *testing.T) {
	a := web()
	b := with(a, func(c *spec.Container) {
		c.Pos = spec.Pos{File: "/elsewhere.toml", Line: 99}
		c.Profiles = []string{"small"}
		c.State = spec.StateStopped
		c.Name = "other"
	})
	assert.Equal(t, Hash(a), Hash(b))
	assert.Equal(t, Hash(with(a, func(c *spec.Container) { c.Env = nil })),
		Hash(with(a, func(c *spec.Container) { c.Env = map[string]string{} })), "nil and empty env are the same")
	assert.NotEqual(t, Hash(a), Hash(with(a, func(c *spec.Container) { c.Env["A"] = "2" })))
	assert.NotEqual(t, Hash(a), Hash(with(a, func(c *spec.Container) { c.Command[2] = "daemon on;" })))
}

func TestPlan(t *testing.T) {
	base := web()
	tests := []struct {
		name    string
		desired []spec.Container
		actual  []Observed
		kind    Kind
		reasons []string
	}{
		{"new", []spec.Container{base}, nil, KindCreate, []string{"not on the host"}},
		{"in sync running", []spec.Container{base}, []Observed{observed("p", base, StatusRunning)}, KindNone, nil},
		{"in sync stopped", []spec.Container{with(base, func(c *spec.Container) { c.State = spec.StateStopped })},
			[]Observed{observed("p", base, StatusStopped)}, KindNone, nil},
		{"stopped by hand", []spec.Container{base}, []Observed{observed("p", base, StatusStopped)},
			KindStart, []string{"state: stopped → running"}},
		{"state stopped", []spec.Container{with(base, func(c *spec.Container) { c.State = spec.StateStopped })},
			[]Observed{observed("p", base, StatusRunning)}, KindStop, []string{"state: running → stopped"}},
		{"deleted by hand", []spec.Container{base}, []Observed{observed("p", base, StatusMissing)},
			KindRecreate, []string{"container missing (its record is there, the container is gone)"}},
		{"command", []spec.Container{with(base, func(c *spec.Container) { c.Command = []string{"/sbin/init"} })},
			[]Observed{observed("p", base, StatusRunning)}, KindRecreate,
			[]string{`command changed: ["/usr/sbin/nginx","-g","daemon off;"] → ["/sbin/init"]`}},
		{"command removed", []spec.Container{with(base, func(c *spec.Container) { c.Command = nil })},
			[]Observed{observed("p", base, StatusRunning)}, KindRecreate,
			[]string{`command changed: ["/usr/sbin/nginx","-g","daemon off;"] → (image init)`}},
		{"image", []spec.Container{with(base, func(c *spec.Container) { c.Image = "alpine" })},
			[]Observed{observed("p", base, StatusRunning)}, KindRecreate, []string{`image changed: "debian" → "alpine"`}},
		{"mounts", []spec.Container{with(base, func(c *spec.Container) {
			c.Mounts = []spec.Mount{{Type: spec.MountBind, Source: "/src", Target: "/src"}}
		})}, []Observed{observed("p", base, StatusRunning)}, KindRecreate, []string{"mounts changed: +/src"}},
		{"network", []spec.Container{with(base, func(c *spec.Container) {
			c.Network = spec.Network{Mode: "bridge", IPv4: "10.88.0.10"}
		})}, []Observed{observed("p", base, StatusRunning)}, KindRecreate,
			[]string{"network changed: none → bridge(10.88.0.10)"}},
		{"ports", []spec.Container{with(base, func(c *spec.Container) {
			c.Ports = []spec.Port{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}
		})}, []Observed{observed("p", base, StatusRunning)}, KindRecreate, []string{"ports changed: [] → [8080:80/tcp]"}},
		{"privileged", []spec.Container{with(base, func(c *spec.Container) { c.Privileged = true })},
			[]Observed{observed("p", base, StatusRunning)}, KindRecreate, []string{"privileged changed: false → true"}},
		{"raw", []spec.Container{with(base, func(c *spec.Container) { c.Raw = map[string]string{"lxc.cap.drop": "sys_time"} })},
			[]Observed{observed("p", base, StatusRunning)}, KindRecreate, []string{"raw LXC keys changed: +lxc.cap.drop"}},
		{"limits in place", []spec.Container{with(base, func(c *spec.Container) { c.Limits.Memory = 1 << 30; c.Limits.Pids = 100 })},
			[]Observed{observed("p", base, StatusRunning)}, KindRestart,
			[]string{"limits changed: memory 512MiB → 1GiB, pids unlimited → 100 (needs a restart)"}},
		{"env in place, keys only", []spec.Container{with(base, func(c *spec.Container) { c.Env = map[string]string{"A": "secret", "B": "x"} })},
			[]Observed{observed("p", base, StatusRunning)}, KindRestart,
			[]string{"env changed: ~A, +B (needs a restart)"}},
		{"env in place, stopped and staying so", []spec.Container{with(base, func(c *spec.Container) {
			c.Env = map[string]string{"A": "2"}
			c.State = spec.StateStopped
		})}, []Observed{observed("p", base, StatusStopped)}, KindUpdate,
			[]string{"env changed: ~A (from the next start)"}},
		{"env in place, to be stopped", []spec.Container{with(base, func(c *spec.Container) {
			c.Env = map[string]string{"A": "2"}
			c.State = spec.StateStopped
		})}, []Observed{observed("p", base, StatusRunning)}, KindUpdate,
			[]string{"env changed: ~A (from the next start)", "state: running → stopped"}},
		{"recorded while running, not yet started", []spec.Container{with(base, func(c *spec.Container) { c.Env = map[string]string{"A": "2"} })},
			[]Observed{startedFrom(observed("p", with(base, func(c *spec.Container) { c.Env = map[string]string{"A": "2"} }), StatusRunning), base)},
			KindRestart, []string{"env changed: ~A (recorded, needs a restart)"}},
		{"recorded while stopped: the start reads it", []spec.Container{with(base, func(c *spec.Container) { c.Env = map[string]string{"A": "2"} })},
			[]Observed{startedFrom(observed("p", with(base, func(c *spec.Container) { c.Env = map[string]string{"A": "2"} }), StatusStopped), base)},
			KindStart, []string{"state: stopped → running"}},
		{"started from what it has", []spec.Container{base},
			[]Observed{startedFrom(observed("p", base, StatusRunning), base)}, KindNone, nil},
		{"update and start", []spec.Container{with(base, func(c *spec.Container) { c.Limits.CPUs = 2 })},
			[]Observed{observed("p", base, StatusStopped)}, KindUpdate,
			[]string{"limits changed: cpus 1 → 2 (from the next start)", "state: stopped → running"}},
		{"recreate wins over in place", []spec.Container{with(base, func(c *spec.Container) { c.Image = "alpine"; c.Limits.CPUs = 2 })},
			[]Observed{observed("p", base, StatusRunning)}, KindRecreate,
			[]string{`image changed: "debian" → "alpine"`, "limits changed: cpus 1 → 2"}},
		{"no stored spec", []spec.Container{with(base, func(c *spec.Container) { c.Limits.CPUs = 2 })},
			[]Observed{{Name: "web", Set: "p", Hash: "0123456789abcdef", Status: StatusRunning}}, KindRecreate,
			[]string{"spec changed (no stored spec to compare: 0123456789ab → " + Hash(with(base, func(c *spec.Container) { c.Limits.CPUs = 2 }))[:12] + ")"}},
		{"gone from specs", nil, []Observed{observed("p", base, StatusRunning)}, KindDelete,
			[]string{"no longer in the specs of set p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(tt.desired, "p", tt.actual)
			require.Len(t, got, 1)
			assert.Equal(t, tt.kind, got[0].Kind)
			assert.Equal(t, tt.reasons, got[0].Reasons)
			assert.Equal(t, "web", got[0].Name)
			assert.Equal(t, "p", got[0].Set)
		})
	}
}

func TestPlanNeverTouchesAnotherSet(t *testing.T) {
	w := web()
	other := observed("other", w, StatusStopped)
	other.Name = "db"
	mine := observed("p", w, StatusRunning)
	got := Plan([]spec.Container{w}, "p", []Observed{mine, other})
	require.Len(t, got, 1, "another set's container is neither deleted nor counted")
	assert.Equal(t, KindNone, got[0].Kind)

	// Same name in another set: ours is created, theirs is not touched.
	theirs := observed("other", w, StatusRunning)
	got = Plan([]spec.Container{w}, "p", []Observed{theirs})
	require.Len(t, got, 1)
	assert.Equal(t, KindCreate, got[0].Kind)

	assert.Empty(t, Down("p", []Observed{theirs, other}))
}

func TestPlanSortedAndComplete(t *testing.T) {
	a := with(web(), func(c *spec.Container) { c.Name = "a" })
	b := with(web(), func(c *spec.Container) { c.Name = "b" })
	z := observed("p", with(web(), func(c *spec.Container) { c.Name = "z" }), StatusRunning)
	got := Plan([]spec.Container{b, a}, "p", []Observed{z, observed("p", b, StatusRunning)})
	var names []string
	var kinds []Kind
	for _, x := range got {
		names = append(names, x.Name)
		kinds = append(kinds, x.Kind)
	}
	assert.Equal(t, []string{"a", "b", "z"}, names)
	assert.Equal(t, []Kind{KindCreate, KindNone, KindDelete}, kinds)
	assert.Equal(t, Hash(a), got[0].Hash)
	assert.Equal(t, StatusRunning, got[0].State)
}

// TestRender checks the text and JSON renderings against golden files.
func TestRender(t *testing.T) {
	base := web()
	desired := []spec.Container{
		with(base, func(c *spec.Container) { c.Name = "api"; c.Command = []string{"/bin/api", "--v2"} }),
		with(base, func(c *spec.Container) { c.Name = "cache"; c.Limits.Memory = 1 << 30 }),
		with(base, func(c *spec.Container) { c.Name = "db" }),
		with(base, func(c *spec.Container) { c.Name = "new" }),
		with(base, func(c *spec.Container) {
			c.Name = "quiet"
			c.State = spec.StateStopped
			c.Env = map[string]string{"A": "secret"}
		}),
		with(base, func(c *spec.Container) { c.Name = "same" }),
	}
	actual := []Observed{
		observed("p", with(base, func(c *spec.Container) { c.Name = "api"; c.Command = []string{"/bin/api"} }), StatusRunning),
		observed("p", with(base, func(c *spec.Container) { c.Name = "cache" }), StatusRunning),
		observed("p", with(base, func(c *spec.Container) { c.Name = "db" }), StatusStopped),
		observed("p", with(base, func(c *spec.Container) { c.Name = "old" }), StatusRunning),
		observed("p", with(base, func(c *spec.Container) { c.Name = "quiet"; c.State = spec.StateStopped }), StatusStopped),
		observed("p", with(base, func(c *spec.Container) { c.Name = "same" }), StatusRunning),
	}
	actions := Plan(desired, "p", actual)
	var text bytes.Buffer
	require.NoError(t, WriteText(&text, "p", actions))
	js, err := json.MarshalIndent(NewPlanReport("p", actions), "", "  ")
	require.NoError(t, err)
	golden(t, "plan.txt.golden", text.Bytes())
	golden(t, "plan.json.golden", append(js, '\n'))

	text.Reset()
	require.NoError(t, WriteText(&text, "p", Plan(desired[5:], "p", actual[5:])))
	assert.Equal(t, "No changes: set \"p\" matches its specs (1 container).\n", text.String())
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to create it")
	assert.Equal(t, string(want), string(got), "differs from %s (run with -update after checking)", path)
	assert.False(t, strings.Contains(string(got), "secret"), "env values never appear")
}
