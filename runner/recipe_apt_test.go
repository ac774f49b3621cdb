package runner_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/spec"
)

// TestRecipeAptRepository builds a recipe on a debootstrap image with real
// apt: a hook marked before = "packages" lays out a signed flat repository
// inside the build container, the recipe's repository (its key and a
// deb822 source with Signed-By) makes apt trust it, and its package is
// installed from it without the package it recommends (recommends =
// false). The repository is made here offline: dpkg-deb and a throwaway
// gpg key. It takes minutes (debootstrap), so not in -short.
func TestRecipeAptRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("debootstrap takes minutes; not in -short")
	}
	f := newRecipeFixture(t)
	testenv.RequiresTool(t, "debootstrap", "dpkg-deb", "gpg", "gpgconf")
	if _, err := images.HostMirror(); err != nil {
		testenv.Unavailable(t, err.Error())
	}
	dir := t.TempDir()
	key, repo := signedFlatRepo(t, dir)

	pre := filepath.Join(dir, "repo.sh")
	require.NoError(t, os.WriteFile(pre, []byte(repo), 0o644))
	check := filepath.Join(dir, "check.sh")
	require.NoError(t, os.WriteFile(check, []byte(`set -e
cat /usr/share/stint-probe/ok
test ! -e /usr/share/stint-extra/ok || { echo "recommended package installed"; exit 1; }
grep -- '--no-install-recommends' /var/log/apt/history.log
cat /etc/apt/sources.list.d/stint-probe.sources
`), 0o644))
	set := f.set(
		spec.Image{Name: "debian", Builder: "debootstrap", Suite: "bookworm", Variant: "minbase"},
		spec.Image{Name: "probed", From: "debian", Packages: []string{"stint-probe"}, Recommends: new(bool),
			HooksBeforePackages: []string{pre}, Hooks: []string{check},
			Repositories: []spec.Repository{{Name: "probe", URI: "file:/srv/repo", Suite: "./", Key: key}}},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	si := &runner.StoreImages{Store: f.store, Set: set, Recipes: f.r}
	_, err := si.Build(ctx, "probed", nil)
	require.NoError(t, err, f.out.String())
	out := f.out.String()
	assert.Contains(t, out, "[image probed] + key of repository probe to /etc/apt/keyrings/stint-probe.asc\n")
	assert.Contains(t, out, "[image probed] probe installed\n")
	assert.Contains(t, out, "[image probed] Signed-By: /etc/apt/keyrings/stint-probe.asc\n")
	assert.NotContains(t, out, "recommended package installed")
	f.assertClean(t)
}

// signedFlatRepo makes, under dir, a gpg key (its public half, armored, is
// keyFile) and a flat apt repository of two packages, stint-probe
// recommending stint-extra, signed by it (InRelease); script is a shell
// script that writes the repository to /srv/repo.
func signedFlatRepo(t *testing.T, dir string) (keyFile, script string) {
	t.Helper()
	gnupg, err := os.MkdirTemp("", "gpg-") // short: gpg-agent's socket path is limited
	require.NoError(t, err)
	t.Cleanup(func() {
		kill := exec.Command("gpgconf", "--kill", "gpg-agent")
		kill.Env = append(os.Environ(), "GNUPGHOME="+gnupg)
		_ = kill.Run()
		os.RemoveAll(gnupg)
	})
	require.NoError(t, os.Chmod(gnupg, 0o700))
	gpg := func(args ...string) []byte {
		t.Helper()
		c := exec.Command("gpg", append([]string{"--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		c.Env = append(os.Environ(), "GNUPGHOME="+gnupg)
		out, err := c.Output()
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		require.NoError(t, err, "gpg %v: %s", args, stderr)
		return out
	}
	gpg("--quick-gen-key", "stint probe <probe@example.org>", "ed25519", "sign", "never")
	keyFile = filepath.Join(dir, "probe.asc")
	require.NoError(t, os.WriteFile(keyFile, gpg("--armor", "--export"), 0o644))

	var packages strings.Builder
	var sh strings.Builder
	sh.WriteString("set -e\nmkdir -p /srv/repo\ncd /srv/repo\n")
	for _, p := range []struct{ name, extra string }{
		{"stint-probe", "Recommends: stint-extra\n"},
		{"stint-extra", ""},
	} {
		root := filepath.Join(dir, p.name)
		require.NoError(t, os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755))
		require.NoError(t, os.MkdirAll(filepath.Join(root, "usr/share", p.name), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, "usr/share", p.name, "ok"), []byte("probe installed\n"), 0o644))
		control := fmt.Sprintf("Package: %s\nVersion: 1.0\nArchitecture: all\nMaintainer: stint <probe@example.org>\n%sDescription: stint test package\n", p.name, p.extra)
		require.NoError(t, os.WriteFile(filepath.Join(root, "DEBIAN/control"), []byte(control), 0o644))
		deb := filepath.Join(dir, p.name+"_1.0_all.deb")
		out, err := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, deb).CombinedOutput()
		require.NoError(t, err, "%s", out)
		data, err := os.ReadFile(deb)
		require.NoError(t, err)
		sum := sha256.Sum256(data)
		fmt.Fprintf(&packages, "%sFilename: ./%s\nSize: %d\nSHA256: %s\n\n", control, filepath.Base(deb), len(data), hex.EncodeToString(sum[:]))
		fmt.Fprintf(&sh, "base64 -d > %s <<'EOF'\n%s\nEOF\n", filepath.Base(deb), base64.StdEncoding.EncodeToString(data))
	}
	sum := sha256.Sum256([]byte(packages.String()))
	release := fmt.Sprintf("Date: %s\nSHA256:\n %s %d Packages\n", time.Now().UTC().Format(time.RFC1123), hex.EncodeToString(sum[:]), packages.Len())
	releaseFile := filepath.Join(dir, "Release")
	require.NoError(t, os.WriteFile(releaseFile, []byte(release), 0o644))
	inRelease := gpg("--clearsign", "--output", "-", releaseFile)
	fmt.Fprintf(&sh, "cat > Packages <<'EOF'\n%sEOF\ncat > InRelease <<'EOF'\n%sEOF\n", packages.String(), inRelease)
	return keyFile, sh.String()
}
