package lxdrt

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/container"
)

func TestInstanceName(t *testing.T) {
	assert.Equal(t, "ct-test-1", InstanceName("ct-test-1"))
	// Never "stint-": a local stint's gc sweeps the cgroups of such names.
	assert.Equal(t, "stintr-test-1", InstanceName("stint-test-1"))
	assert.NotEqual(t, InstanceName("stint-test-1"), InstanceName("stintr-test-1"))
	assert.Regexp(t, `^stintr-`, InstanceName("stint."+strings.Repeat("x", 60)))
	assert.Regexp(t, `^stintr-x{56}$`, InstanceName("stint-"+strings.Repeat("x", 56)))
	assert.Regexp(t, `^stintr-x{39}-[0-9a-f]{12}$`, InstanceName("stint-"+strings.Repeat("x", 57)))
	for _, n := range []string{"test[go=1.22]", "1abc", "a_b", "x-", string(make([]byte, 80)), "ünï"} {
		got := InstanceName(n)
		assert.Regexp(t, `^[a-zA-Z][a-zA-Z0-9-]{0,62}$`, got, n)
		assert.NotEqual(t, got, InstanceName(n+"x"), "distinct names stay distinct")
	}
	assert.Equal(t, InstanceName("test[go=1.22]"), InstanceName("test[go=1.22]"), "stable")
}

// TestRender: a Config becomes LXD config keys and devices, without a
// server; what a remote can't do is refused before anything is made.
func TestRender(t *testing.T) {
	r := &Runtime{opts: Options{Remote: "r", Owner: "host:/root", Network: "lxdbr1"}}
	p, err := r.render("job-1", container.Config{
		Limits:     container.Limits{Memory: 512 << 20, CPUs: 1.5, Pids: 64},
		Privileged: true,
		Network:    container.Network{Mode: container.NetworkBridge},
		Init:       container.Init{Kind: container.InitCommand, Command: []string{"/bin/echo", "it's"}, Env: []string{"A=1"}},
		Mounts: []container.Mount{
			{Source: "/src", Target: "/src", Readonly: true},
			{Type: container.MountTmpfs, Target: "/tmp", Size: 1 << 20},
			{Type: container.MountVolume, Volume: "cache", Target: "/cache"},
		},
		Raw: map[string]string{"security.nesting": "true", "raw.lxc": "lxc.apparmor.profile = unconfined"},
	}, CreateOptions{Tags: map[string]string{"job": "test"}, Ports: []Port{{Listen: "tcp:0.0.0.0:8080", Connect: "tcp:127.0.0.1:80"}}}, []string{"eth0"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"user.stint.owner": "host:/root", "user.stint.name": "job-1", "user.stint.job": "test",
		"user.stint.ro-binds": "/src", "security.privileged": "true", "security.nesting": "true",
		"limits.memory": "536870912B", "limits.cpu.allowance": "150ms/100ms", "limits.processes": "64",
		"environment.A": "1",
		"raw.lxc":       "lxc.init.cmd = /bin/sh /.stint-init\nlxc.mount.entry = tmpfs tmp tmpfs rw,nosuid,nodev,create=dir,size=1048576 0 0\nlxc.apparmor.profile = unconfined",
	}, p.config)
	assert.Equal(t, map[string]map[string]string{
		"eth0":         {"type": "nic", "network": "lxdbr1", "name": "eth0"},
		"stint-port-0": {"type": "proxy", "listen": "tcp:0.0.0.0:8080", "connect": "tcp:127.0.0.1:80"},
	}, p.devices)
	assert.Equal(t, "#!/bin/sh\n# stint: the container's command\nexec '/bin/echo' 'it'\\''s'\n", p.init)
	assert.Len(t, p.copies, 1)
	assert.Len(t, p.volumes, 1)

	none, err := r.render("job-2", container.Config{}, CreateOptions{}, []string{"eth0"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"type": "none"}, none.devices["eth0"], "network none masks the profile's NIC")

	for _, cfg := range []container.Config{
		{Raw: map[string]string{"lxc.mount.auto": "proc"}},
		{Raw: map[string]string{"user.stint.owner": "me"}},
		{Mounts: []container.Mount{{Source: "/x", Target: "/x"}}},
		{Mounts: []container.Mount{{Type: "nfs", Target: "/x"}}},
		{Network: container.Network{Mode: container.NetworkHost}},
		{IDMap: &container.IDMap{HostUID: 100000, HostGID: 100000, Size: 65536, Hole: &container.IDHole{UID: 4242, GID: 4242}}},
	} {
		_, err := r.render("job-3", cfg, CreateOptions{}, nil)
		var ue *UsageError
		require.True(t, errors.As(err, &ue), "%v", cfg)
		assert.ErrorIs(t, err, container.ErrUnsupported)
		assert.Equal(t, 2, ue.ExitCode())
	}
	_, err = r.render("job-4", container.Config{}, CreateOptions{Tags: map[string]string{"owner": "x"}}, nil)
	assert.ErrorIs(t, err, container.ErrUnsupported, "the owner tag is the runtime's")
}

func TestStatusOf(t *testing.T) {
	assert.Equal(t, container.ExitStatus{Code: 1}, statusOf(1))
	assert.Equal(t, container.ExitStatus{Code: 137, Signal: 9}, statusOf(137))
	assert.Equal(t, container.ExitStatus{Code: 255}, statusOf(255))
}
