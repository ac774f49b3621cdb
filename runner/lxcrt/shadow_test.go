package lxcrt

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHideShadowTools: PATH goes (so liblxc writes the id maps itself) only
// when the config runs no script that could need it.
func TestHideShadowTools(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		hidden       bool
	}{
		{"plain job", "lxc.uts.name = a\nlxc.idmap = u 0 100000 65536\nlxc.net.0.type = empty\n", true},
		{"hook", "lxc.uts.name = a\nlxc.hook.start-host = /usr/local/bin/h\n", false},
		{"network script", "lxc.net.0.type = veth\nlxc.net.0.script.up = /etc/lxc/up\n", false},
		{"include", "lxc.include = /usr/share/lxc/config/common.conf\n", false},
		{"no config", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", "/usr/bin:/bin")
			p := filepath.Join(t.TempDir(), "config")
			if tc.config != "" {
				require.NoError(t, os.WriteFile(p, []byte(tc.config), 0o600))
			}
			hideShadowTools(p)
			if tc.hidden {
				assert.Equal(t, "/nonexistent", os.Getenv("PATH"))
			} else {
				assert.Equal(t, "/usr/bin:/bin", os.Getenv("PATH"))
			}
		})
	}
}
