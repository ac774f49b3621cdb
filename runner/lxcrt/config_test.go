package lxcrt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner"
)

// TestRender compares rendered configs with golden files in testdata/.
func TestRender(t *testing.T) {
	src := t.TempDir()
	idm := &runner.IDMap{HostUID: 100000, HostGID: 100000, Size: 65536}
	cases := []struct {
		name string
		cfg  runner.Config
		host Host
	}{
		{"unprivileged-v1", runner.Config{
			Rootfs: "/pool/c1", IDMap: idm, LogFile: "/c/c1/lxc.log",
			Mounts: []runner.Mount{{Type: "bind", Source: src, Target: "/src", Readonly: true}, {Type: "tmpfs", Target: "/tmp", Size: 256 << 20}},
			Limits: runner.Limits{Memory: 512 << 20, CPUs: 1.5, Pids: 100},
			Raw:    map[string]string{"lxc.cap.drop": "sys_admin", "lxc.apparmor.profile": "x"},
		}, Host{}},
		{"privileged-v2-host", runner.Config{
			Rootfs: "/pool/c1", Privileged: true, Network: runner.NetConfig{Mode: runner.NetHost},
			Limits: runner.Limits{Memory: 1 << 30, CPUs: 2, Pids: 10},
		}, Host{CgroupV2: true, AppArmor: true, Seccomp: "/usr/share/lxc/config/common.seccomp"}},
		{"unprivileged-host-net", runner.Config{
			Rootfs: "/pool/c1", IDMap: idm, Network: runner.NetConfig{Mode: runner.NetHost},
		}, Host{}},
		{"bridge", runner.Config{Rootfs: "/pool/c1", IDMap: idm, Network: runner.NetConfig{Mode: "bridge",
			Attach: func(string) ([][2]string, error) {
				return [][2]string{{"lxc.net.0.type", "veth"}, {"lxc.net.0.link", "stint0"}, {"lxc.mount.entry", "/h etc/hosts none bind,ro 0 0"}}, nil
			}}}, Host{}},
		{"privileged-v1", runner.Config{Rootfs: "/pool/c1", Privileged: true}, Host{Seccomp: "/s.seccomp"}},
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
	idm := &runner.IDMap{HostUID: 100000, HostGID: 100000, Size: 65536}
	cases := map[string]runner.Config{
		"rootfs \"rel\" is not an absolute path":   {Rootfs: "rel", IDMap: idm},
		"unprivileged without an id map":           {Rootfs: "/r"},
		"not an LXC key":                           {Rootfs: "/r", IDMap: idm, Raw: map[string]string{"foo": "1"}},
		"has a newline":                            {Rootfs: "/r", IDMap: idm, Raw: map[string]string{"lxc.foo": "1\nlxc.bar = 2"}},
		"network mode \"bridge\" is not supported": {Rootfs: "/r", IDMap: idm, Network: runner.NetConfig{Mode: "bridge"}},
		"bind mount /x":                            {Rootfs: "/r", IDMap: idm, Mounts: []runner.Mount{{Type: "bind", Source: "/nonexistent-stint", Target: "/x"}}},
	}
	for want, cfg := range cases {
		_, err := Render("c1", cfg, Host{})
		if assert.Error(t, err, want) {
			assert.Contains(t, err.Error(), want)
		}
	}
}
