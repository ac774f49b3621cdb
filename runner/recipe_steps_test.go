package runner

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/spec"
)

// stepLines renders steps one per line: "put TARGET" or "run ARGV...".
func stepLines(steps []recipeStep) []string {
	var out []string
	for _, s := range steps {
		if s.put != nil {
			out = append(out, "put "+s.put.Target)
			continue
		}
		out = append(out, "run "+strings.Join(s.argv, " | "))
	}
	return out
}

func orderRecipe() *images.Recipe {
	no := false
	return &images.Recipe{
		Name: "ci", Base: &images.Image{Fingerprint: "0123456789abcdef0123"},
		Packages:    []string{"make", "gcc"},
		Recommends:  &no,
		HooksBefore: []images.RecipeFile{{Source: "/s/pin.sh", Data: []byte("true")}},
		Hooks:       []images.RecipeFile{{Source: "/s/users.sh", Data: []byte("true")}, {Source: "/s/clean.sh", Data: []byte("true")}},
		Files:       []images.RecipeFile{{Source: "/s/motd", Target: "/etc/motd", Mode: 0o644, Data: []byte("hi")}},
		Repositories: []images.RecipeRepo{
			{Repository: spec.Repository{Name: "flat", URI: "file:/srv/repo", Suite: "./"}},
			{Repository: spec.Repository{Name: "vendor", URI: "http://apt.example.org/debian", Suite: "bookworm",
				Components: []string{"main", "contrib"}, Key: "/s/vendor.asc"},
				KeyData: []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n...")},
		},
	}
}

// TestRecipeStepsOrder: repositories, hooks before packages, packages,
// files, hooks; the apt line without recommends.
func TestRecipeStepsOrder(t *testing.T) {
	steps, err := recipeSteps(orderRecipe(), pmApt)
	require.NoError(t, err)
	apt := `export DEBIAN_FRONTEND=noninteractive; apt-get update && apt-get install -y --no-install-recommends "$@" && apt-get clean && rm -rf /var/lib/apt/lists/*`
	assert.Equal(t, []string{
		"put /etc/apt/sources.list.d/stint-flat.sources",
		"put /etc/apt/keyrings/stint-vendor.asc",
		"put /etc/apt/sources.list.d/stint-vendor.sources",
		"put /.stint-hooks/pre-01-pin.sh",
		"run /bin/sh | /.stint-hooks/pre-01-pin.sh",
		"run /bin/sh | -c | " + apt + " | sh | make | gcc",
		"put /etc/motd",
		"put /.stint-hooks/01-users.sh",
		"run /bin/sh | /.stint-hooks/01-users.sh",
		"put /.stint-hooks/02-clean.sh",
		"run /bin/sh | /.stint-hooks/02-clean.sh",
	}, stepLines(steps))

	assert.Equal(t, "Types: deb\nURIs: file:/srv/repo\nSuites: ./\n", string(steps[0].put.Data), "flat: no components, no key")
	assert.Equal(t, "Types: deb\nURIs: http://apt.example.org/debian\nSuites: bookworm\nComponents: main contrib\n"+
		"Signed-By: /etc/apt/keyrings/stint-vendor.asc\n", string(steps[2].put.Data))
	assert.Equal(t, orderRecipe().Repositories[1].KeyData, steps[1].put.Data)
	for _, i := range []int{0, 1, 2} {
		assert.Equal(t, fs.FileMode(0o644), steps[i].put.Mode, steps[i].put.Target)
	}
	assert.Equal(t, &HookError{Image: "ci", Hook: "/s/pin.sh", Index: 1, BeforePackages: true}, steps[4].hook)
	assert.Equal(t, &HookError{Image: "ci", Hook: "/s/clean.sh", Index: 2}, steps[10].hook)
	assert.Equal(t, "image ci: hook 1 (before packages) /s/pin.sh: exit 3",
		(&HookError{Image: "ci", Hook: "/s/pin.sh", Index: 1, BeforePackages: true, Status: container.ExitStatus{Code: 3}}).Error())
}

func TestRecipeStepsBinaryKeyAndRecommends(t *testing.T) {
	r := orderRecipe()
	r.Repositories = r.Repositories[1:]
	r.Repositories[0].KeyData = []byte{0x99, 0x01, 0x0d}
	yes := true
	r.Recommends = &yes
	steps, err := recipeSteps(r, pmApt)
	require.NoError(t, err)
	assert.Equal(t, "put /etc/apt/keyrings/stint-vendor.gpg", stepLines(steps)[0], "a binary key is a .gpg")
	assert.Contains(t, string(steps[1].put.Data), "Signed-By: /etc/apt/keyrings/stint-vendor.gpg\n")
	assert.Contains(t, stepLines(steps)[4], "apt-get install -y --install-recommends \"$@\"")

	r.Recommends = nil
	steps, err = recipeSteps(r, pmApt)
	require.NoError(t, err)
	assert.Contains(t, stepLines(steps)[4], "apt-get install -y \"$@\"", "the base's default")
}

func TestRecipeStepsPackageManagers(t *testing.T) {
	no := false
	for _, tt := range []struct {
		pm         pkgManager
		recommends *bool
		want       string
	}{
		{pmApk, &no, `apk add --no-cache "$@"`},
		{pmDnf, &no, `dnf install -y --setopt=install_weak_deps=false "$@" && dnf clean all`},
		{pmDnf, nil, `dnf install -y "$@" && dnf clean all`},
	} {
		r := orderRecipe()
		r.Repositories, r.Recommends = nil, tt.recommends
		steps, err := recipeSteps(r, tt.pm)
		require.NoError(t, err)
		assert.Equal(t, "run /bin/sh | -c | "+tt.want+" | sh | make | gcc", stepLines(steps)[2], tt.pm)
	}

	// Repositories are apt's: refused on another base, before anything runs.
	_, err := recipeSteps(orderRecipe(), pmApk)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "has no apt-get")
	r := orderRecipe()
	r.Repositories = nil
	_, err = recipeSteps(r, pmNone)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no package manager stint knows")

	// Without packages, no package manager is needed.
	r.Packages = nil
	steps, err := recipeSteps(r, pmNone)
	require.NoError(t, err)
	assert.Len(t, steps, 7)
}
