package lxdrt_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBoundary: the runtime imports the contract, the remotes store and
// LXD's client and shared trees (Apache-2.0) only: never the job engine,
// storage, networks, specs, LXD's daemon tree, or lxc/incus.
func TestBoundary(t *testing.T) {
	for _, pkg := range []string{"github.com/stintdev/stint/runner/lxdrt", "github.com/stintdev/stint/remote"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		require.NoError(t, err, "%s", out)
		for _, dep := range strings.Fields(string(out)) {
			switch {
			case dep == "github.com/stintdev/stint/runner", strings.HasPrefix(dep, "github.com/stintdev/stint/storage"),
				strings.HasPrefix(dep, "github.com/stintdev/stint/net"), strings.HasPrefix(dep, "github.com/stintdev/stint/spec"),
				strings.HasPrefix(dep, "github.com/stintdev/stint/images"), strings.HasPrefix(dep, "github.com/lxc/incus"):
				t.Errorf("%s imports %s", pkg, dep)
			case strings.HasPrefix(dep, "github.com/canonical/lxd/") &&
				!strings.HasPrefix(dep, "github.com/canonical/lxd/client") && !strings.HasPrefix(dep, "github.com/canonical/lxd/shared"):
				t.Errorf("%s imports %s (only LXD's client and shared trees)", pkg, dep)
			}
		}
	}
}
