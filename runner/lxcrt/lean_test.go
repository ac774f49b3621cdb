package lxcrt

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/container"
)

// A job's container is lean (issue 16): no ttys, no console, no hook, no
// include of LXC's common.conf; the seccomp policy and the capability drop
// stay. On the fast path its only binaries from the host are the agent and
// busybox (for an attach), and the agent is PID 1.
func TestRenderJobIsLean(t *testing.T) {
	idm := &container.IDMap{HostUID: 100000, HostGID: 100000, Size: 65536}
	cfg := container.Config{Root: container.Root{Dir: "/pool/j1"}, IDMap: idm, LogFile: "/c/j1/lxc.log"}
	for _, agent := range []string{"", "/usr/lib/stint/stint-agent"} {
		host := Host{Seccomp: "/usr/share/lxc/config/common.seccomp", Agent: agent}
		lines, err := Render("j1", cfg, host)
		require.NoError(t, err)
		keys := map[string][]string{}
		for _, l := range lines {
			k, v, _ := strings.Cut(l, " = ")
			keys[k] = append(keys[k], v)
		}
		assert.Equal(t, []string{"0"}, keys["lxc.tty.max"], "agent %q", agent)
		assert.Equal(t, []string{"none"}, keys["lxc.console.path"])
		assert.Equal(t, []string{"/usr/share/lxc/config/common.seccomp"}, keys["lxc.seccomp.profile"], "seccomp stays")
		assert.Equal(t, []string{"sys_module mac_admin mac_override sys_time"}, keys["lxc.cap.drop"], "the capability drop stays")
		for k := range keys {
			assert.False(t, strings.HasPrefix(k, "lxc.hook.") || strings.HasPrefix(k, "lxc.include") || k == "lxc.console.logfile",
				"a job needs no %s", k)
		}
		mounts := strings.Join(keys["lxc.mount.entry"], "\n")
		if agent == "" {
			assert.Contains(t, keys["lxc.init.cmd"][0], initPath)
			continue
		}
		assert.Equal(t, []string{agentPath}, keys["lxc.init.cmd"], "the agent is PID 1")
		assert.Contains(t, mounts, agent+" .stint/agent none bind,ro,create=file")
		assert.Contains(t, mounts, HostBusybox+" .stint/busybox none bind,ro,create=file")
		assert.NotContains(t, mounts, HostInit, "no init.lxc")
	}
}

// Only the minimal init goes on the fast path: a long-lived container's
// command or booted init keeps LXC's way.
func TestRenderAgentOnlyForMinimalInit(t *testing.T) {
	idm := &container.IDMap{HostUID: 100000, HostGID: 100000, Size: 65536}
	host := Host{Agent: "/usr/lib/stint/stint-agent"}
	for _, init := range []container.Init{{Kind: container.InitCommand, Command: []string{"/bin/sleep", "1"}}, {Kind: container.InitBoot}} {
		lines, err := Render("c1", container.Config{Root: container.Root{Dir: "/pool/c1"}, IDMap: idm, Init: init}, host)
		require.NoError(t, err)
		assert.NotContains(t, strings.Join(lines, "\n"), agentPath, "%v", init.Kind)
	}
}
