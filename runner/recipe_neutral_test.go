package runner

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/images"
)

// TestNeutralHost: a recipe's /etc/hostname and /etc/hosts that name the
// build container are reset; a file without that name, or one the recipe's
// files set, stays; a missing one stays missing; a link is not followed
// out of the root.
func TestNeutralHost(t *testing.T) {
	const build = "stint-image-web-1a2b3c"
	for _, c := range []struct {
		name               string
		hostname, hosts    string // "" : missing
		files              []string
		wantName, wantHost string
	}{
		{"both name the build", build + "\n", "127.0.1.1\t" + build + "\n", nil, neutralHostname, neutralHosts},
		{"a hook's own hostname stays", "web\n", "127.0.0.1 localhost\n", nil, "web\n", "127.0.0.1 localhost\n"},
		{"the recipe's files stay", build + "\n", build + "\n", []string{"/etc/hosts"}, neutralHostname, build + "\n"},
		{"missing stays missing", "", build + "\n", nil, "", neutralHosts},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			require.NoError(t, os.Mkdir(filepath.Join(root, "etc"), 0o755))
			for f, data := range map[string]string{"hostname": c.hostname, "hosts": c.hosts} {
				if data != "" {
					require.NoError(t, os.WriteFile(filepath.Join(root, "etc", f), []byte(data), 0o644))
				}
			}
			b := putBuild(root)
			b.name = build
			b.rec = &images.Recipe{Name: "web"}
			for _, f := range c.files {
				b.rec.Files = append(b.rec.Files, images.RecipeFile{Target: f})
			}
			require.NoError(t, b.neutralHost())
			for f, want := range map[string]string{"hostname": c.wantName, "hosts": c.wantHost} {
				got, err := os.ReadFile(filepath.Join(root, "etc", f))
				if want == "" {
					assert.True(t, os.IsNotExist(err), "/etc/%s was made", f)
					continue
				}
				require.NoError(t, err)
				assert.Equal(t, want, string(got), "/etc/%s", f)
			}
		})
	}
}

// TestNeutralHostLinkOut: an /etc/hosts linking to a host file naming the
// build is neither read nor written there.
func TestNeutralHostLinkOut(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(root, "etc"), 0o755))
	host := filepath.Join(outside, "hosts")
	require.NoError(t, os.WriteFile(host, []byte("stint-image-x\n"), 0o644))
	require.NoError(t, os.Symlink(host, filepath.Join(root, "etc/hosts")))
	b := putBuild(root)
	b.name, b.rec = "stint-image-x", &images.Recipe{Name: "x"}
	require.NoError(t, b.neutralHost())
	got, err := os.ReadFile(host)
	require.NoError(t, err)
	assert.Equal(t, "stint-image-x\n", string(got))
}
