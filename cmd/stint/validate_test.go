package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runValidate(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	// A fresh --root: no local image store, so no host state leaks in.
	code = run(append([]string{"--root", t.TempDir()}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func TestValidateGood(t *testing.T) {
	out, errb, code := runValidate(t, "validate", "../../testdata/specs/good/full.toml")
	require.Equal(t, ExitOK, code, errb)
	assert.Equal(t, `ok: set "myproject" (1 file): 2 jobs, 1 container, 4 images, 1 profile
  job test[go=1.22]
  job test[go=1.23]
  container web
`, out)
	assert.Empty(t, errb)
}

// The acceptance: --json on a spec with two profiles and a matrix
// prints the merged, expanded jobs under the spec's own key names.
func TestValidateJSON(t *testing.T) {
	out, errb, code := runValidate(t, "--json", "validate", "../../testdata/specs/good/profiles_matrix.toml")
	require.Equal(t, ExitOK, code, errb)
	var got struct {
		Name string `json:"name"`
		Jobs []struct {
			Name    string            `json:"name"`
			Env     map[string]string `json:"env"`
			Workdir string            `json:"workdir"`
			User    string            `json:"user"`
			Timeout string            `json:"timeout"`
			Run     []string          `json:"run"`
			Mounts  []map[string]any  `json:"mounts"`
			Limits  map[string]any    `json:"limits"`
			Network map[string]any    `json:"network"`
		} `json:"jobs"`
		Containers []any `json:"containers"`
		Images     []any `json:"images"`
		Profiles   []any `json:"profiles"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	assert.Equal(t, "matrix-demo", got.Name)
	assert.Len(t, got.Profiles, 2)
	assert.NotNil(t, got.Containers)
	names := []string{}
	for _, j := range got.Jobs {
		names = append(names, j.Name)
	}
	assert.Equal(t, []string{
		"build[arch=amd64,flavor=alpha]", "build[arch=amd64,flavor=beta]",
		"build[arch=arm64,flavor=alpha]", "build[arch=arm64,flavor=beta]",
	}, names)
	j := got.Jobs[3]
	assert.Equal(t, "/src/beta", j.Workdir)
	assert.Equal(t, "fast", j.Env["LEVEL"], "the later profile wins")
	assert.Equal(t, "true", j.Env["CI"], "maps merge key by key")
	assert.Equal(t, "/out/arm64/beta", j.Env["OUT"])
	assert.Equal(t, "builder", j.User)
	assert.Equal(t, "2m0s", j.Timeout)
	assert.Equal(t, []string{"make ARCH=arm64 FLAVOR=beta", "echo ${HOME} stays for the shell"}, j.Run)
	assert.Equal(t, float64(2e9), j.Limits["memory"], "the job's own limit wins")
	assert.Equal(t, 2.5, j.Limits["cpus"])
	assert.Equal(t, "bridge", j.Network["mode"])
	assert.Len(t, j.Mounts, 3, "the job's /tmp replaces the profile's")
}

func TestValidateBad(t *testing.T) {
	out, errb, code := runValidate(t, "validate", "../../testdata/specs/bad/five.toml")
	assert.Equal(t, ExitUsage, code)
	assert.Empty(t, out)
	lines := strings.Split(strings.TrimSpace(errb), "\n")
	require.Len(t, lines, 5, errb)
	for i, want := range []string{":5:12: ", ":9:13: ", ":10:1: ", ":11:1: ", ":16:1: "} {
		assert.Contains(t, lines[i], "five.toml"+want)
	}
	assert.Contains(t, lines[3], `job.test.rn: unknown key; did you mean "run"?`)
}

func TestValidateBadJSON(t *testing.T) {
	out, errb, code := runValidate(t, "--json", "validate", "../../testdata/specs/bad/syntax.toml")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errb, "syntax.toml:6:1: syntax error")
	var got struct {
		Problems []map[string]any `json:"problems"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Len(t, got.Problems, 1)
	assert.Equal(t, float64(6), got.Problems[0]["line"])
	assert.Equal(t, "../../testdata/specs/bad/syntax.toml", got.Problems[0]["file"])
}

func TestValidateUsage(t *testing.T) {
	_, errb, code := runValidate(t, "validate")
	assert.Equal(t, ExitUsage, code, "no file is a usage error")
	assert.Contains(t, errb, "FILE|DIR")

	_, errb, code = runValidate(t, "validate", "../../testdata/specs/nonexistent.toml")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errb, "nonexistent.toml: cannot read spec: no such file or directory")
}
