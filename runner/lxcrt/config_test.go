package lxcrt

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/container"
)

// TestRender compares rendered configs with golden files in testdata/.
func TestRender(t *testing.T) {
	src := t.TempDir()
	idm := &container.IDMap{HostUID: 100000, HostGID: 100000, Size: 65536}
	cases := []struct {
		name string
		cfg  container.Config
		host Host
	}{
		{"unprivileged-v1", container.Config{
			Root: container.Root{Dir: "/pool/c1"}, IDMap: idm, LogFile: "/c/c1/lxc.log",
			Mounts: []container.Mount{{Type: "bind", Source: src, Target: "/src", Readonly: true}, {Type: "tmpfs", Target: "/tmp", Size: 256 << 20}},
			Limits: container.Limits{Memory: 512 << 20, CPUs: 1.5, Pids: 100},
			Raw:    map[string]string{"lxc.cap.drop": "sys_admin", "lxc.apparmor.profile": "x"},
		}, Host{}},
		{"privileged-v2-host", container.Config{
			Root: container.Root{Dir: "/pool/c1"}, Privileged: true, Network: container.Network{Mode: container.NetworkHost},
			Limits: container.Limits{Memory: 1 << 30, CPUs: 2, Pids: 10},
		}, Host{CgroupV2: true, AppArmor: true, Seccomp: "/usr/share/lxc/config/common.seccomp"}},
		{"unprivileged-host-net", container.Config{
			Root: container.Root{Dir: "/pool/c1"}, IDMap: idm, Network: container.Network{Mode: container.NetworkHost},
		}, Host{}},
		{"bridge", container.Config{Root: container.Root{Dir: "/pool/c1"}, IDMap: idm, Network: container.Network{Mode: container.NetworkBridge,
			Bridge: &container.BridgeAttachment{Bridge: "stint0", HostVeth: "vst0123456789ab",
				Address: netip.MustParsePrefix("10.88.0.10/24"), Gateway: netip.MustParseAddr("10.88.0.1"),
				HostsFile: "/run/stint/net/stint0/hosts", ResolvConf: "/run/stint/net/stint0/resolv.conf"}}}, Host{}},
		{"init-command", container.Config{Root: container.Root{Dir: "/pool/c1"}, Hostname: "web", IDMap: idm,
			Init: container.Init{Kind: container.InitCommand, Command: []string{"nginx"}, ConsoleLog: "/r/logs/p.web.log"}}, Host{}},
		{"init-boot", container.Config{Root: container.Root{Dir: "/pool/c1"}, Hostname: "box", IDMap: idm,
			Init: container.Init{Kind: container.InitBoot, ConsoleLog: "/l"}}, Host{}},
		{"privileged-v1", container.Config{Root: container.Root{Dir: "/pool/c1"}, Privileged: true}, Host{Seccomp: "/s.seccomp"}},
		{"host-user-hole", container.Config{Root: container.Root{Dir: "/pool/c1"}, Hostname: "dev",
			IDMap: &container.IDMap{HostUID: 100000, HostGID: 100000, Size: 65536, Hole: &container.IDHole{UID: 4242, GID: 4343}}}, Host{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines, err := Render("c1", c.cfg, c.host)
			require.NoError(t, err)
			got := strings.ReplaceAll(strings.Join(lines, "\n")+"\n", src, "SRC")
			golden := filepath.Join("testdata", c.name+".conf")
			if os.Getenv("UPDATE_GOLDEN") == "1" {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			assert.Equal(t, string(want), got)
		})
	}
}

func TestRenderErrors(t *testing.T) {
	idm := &container.IDMap{HostUID: 100000, HostGID: 100000, Size: 65536}
	cases := map[string]container.Config{
		"rootfs \"rel\" is not an absolute path": {Root: container.Root{Dir: "rel"}, IDMap: idm},
		"unprivileged without an id map":         {Root: container.Root{Dir: "/r"}},
		"not an LXC key":                         {Root: container.Root{Dir: "/r"}, IDMap: idm, Raw: map[string]string{"foo": "1"}},
		"has a newline":                          {Root: container.Root{Dir: "/r"}, IDMap: idm, Raw: map[string]string{"lxc.foo": "1\nlxc.bar = 2"}},
		"bridge network without an attachment":   {Root: container.Root{Dir: "/r"}, IDMap: idm, Network: container.Network{Mode: container.NetworkBridge}},
		"network mode \"macvlan\"":               {Root: container.Root{Dir: "/r"}, IDMap: idm, Network: container.Network{Mode: "macvlan"}},
		"bind mount /x":                          {Root: container.Root{Dir: "/r"}, IDMap: idm, Mounts: []container.Mount{{Type: "bind", Source: "/nonexistent-stint", Target: "/x"}}},
		"host root is never mapped":              {Root: container.Root{Dir: "/r"}, IDMap: &container.IDMap{HostUID: 100000, HostGID: 100000, Size: 65536, Hole: &container.IDHole{}}},
	}
	for want, cfg := range cases {
		_, err := Render("c1", cfg, Host{})
		if assert.Error(t, err, want) {
			assert.Contains(t, err.Error(), want)
		}
	}
}
