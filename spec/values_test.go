package spec

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"512MiB":  512 << 20,
		"2GB":     2e9,
		"1.5GiB":  3 << 29,
		"1048576": 1 << 20,
		"1 kib":   1024,
		"10b":     10,
		"1TiB":    1 << 40,
	} {
		got, err := ParseSize(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for _, in := range []string{"", "512M", "lots", "1.2.3GB", "-1GB", "0", "0.1B", "GiB", "5 megs"} {
		_, err := ParseSize(in)
		assert.Error(t, err, in)
	}
}

func TestParsePort(t *testing.T) {
	good := map[string]Port{
		"8080:80":                {HostPort: 8080, ContainerPort: 80, Proto: "tcp"},
		"5353:53/udp":            {HostPort: 5353, ContainerPort: 53, Proto: "udp"},
		"127.0.0.1:8443:443/tcp": {HostIP: "127.0.0.1", HostPort: 8443, ContainerPort: 443, Proto: "tcp"},
	}
	for in, want := range good {
		got, err := ParsePort(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for _, in := range []string{"80", "0:80", "80:65536", "a:b", "8080:80/sctp", "::1:80:80", "1.2.3:80:80", "1:2:3:4"} {
		_, err := ParsePort(in)
		assert.Error(t, err, in)
	}
}

func TestSuggest(t *testing.T) {
	assert.Equal(t, `did you mean "run"?`, suggest("rn", jobKeys))
	assert.Equal(t, `did you mean "run"?`, suggest("rnu", jobKeys), "a transposition is one edit")
	assert.Equal(t, `did you mean "workdir"?`, suggest("workdri", jobKeys))
	assert.Equal(t, `did you mean "keep_on_failure"?`, suggest("keep_on_failur", jobKeys))
	assert.Equal(t, "", suggest("completely-different", jobKeys))
	assert.Equal(t, 3, editDistance("kitten", "sitting"))
}

func TestSubstitute(t *testing.T) {
	vars := map[string]string{"go": "1.22", "arch": "arm64"}
	for _, c := range []struct{ in, out, undefined string }{
		{"plain", "plain", ""},
		{"go${go}", "go1.22", ""},
		{"${arch}/${go}/${arch}", "arm64/1.22/arm64", ""},
		{"$${HOME} $HOME $$", "${HOME} $HOME $$", ""},
		{"${nope} ${go}", "${nope} 1.22", "nope"},
		{"${unterminated", "${unterminated", ""},
	} {
		got, undefined := substitute(c.in, vars)
		assert.Equal(t, c.out, got, c.in)
		assert.Equal(t, c.undefined, strings.Join(undefined, ","), c.in)
	}
}

func TestVariants(t *testing.T) {
	vals := func(vs ...string) []sv {
		out := make([]sv, len(vs))
		for i, v := range vs {
			out[i] = sv{V: v}
		}
		return out
	}
	// Keys sorted by name, values in the order written, first key slowest.
	got := variants("build", []matrixKey{
		{name: "flavor", values: vals("alpha", "beta")},
		{name: "arch", values: vals("arm64", "amd64")},
	})
	var names []string
	for _, v := range got {
		names = append(names, v.name)
	}
	assert.Equal(t, []string{
		"build[arch=arm64,flavor=alpha]", "build[arch=arm64,flavor=beta]",
		"build[arch=amd64,flavor=alpha]", "build[arch=amd64,flavor=beta]",
	}, names)
	assert.Equal(t, map[string]string{"arch": "amd64", "flavor": "beta"}, got[3].vars)

	one := variants("test", nil)
	require.Len(t, one, 1)
	assert.Equal(t, "test", one[0].name)
	assert.Empty(t, one[0].vars)
}

func TestScanPositions(t *testing.T) {
	src := `# comment
version = 1
[job.t]
run = [
  "a",   # first
  """multi
line""",
  'lit',
]
env = { A = "1", "B.C" = { D = 2 } }
a.b = true

[[job.t.mount]]
target = "/x"

[[job.t.mount]]
  target = "/y"
[job.t.matrix]
k = ["v"]
d = [1979-05-27 07:32:00Z, 2]
`
	pos := scanPositions(src)
	for path, want := range map[string]lineCol{
		"version":               {2, 1},
		"job.t":                 {3, 1},
		"job.t.run":             {4, 1},
		"job.t.run[0]":          {5, 3},
		"job.t.run[1]":          {6, 3},
		"job.t.run[2]":          {8, 3},
		"job.t.env.A":           {10, 9},
		`job.t.env."B.C".D`:     {10, 28},
		"job.t.a.b":             {11, 1},
		"job.t.mount[0]":        {13, 1},
		"job.t.mount[0].target": {14, 1},
		"job.t.mount[1]":        {16, 1},
		"job.t.mount[1].target": {17, 3},
		"job.t.matrix.k[0]":     {19, 6},
		"job.t.matrix.d[1]":     {20, 28},
	} {
		assert.Equal(t, want, pos[path], path)
	}
}

func TestParentPath(t *testing.T) {
	assert.Equal(t, "job.t.mount[1]", parentPath("job.t.mount[1].target"))
	assert.Equal(t, "job.t.mount", parentPath("job.t.mount[1]"))
	assert.Equal(t, "profile.p.raw", parentPath(`profile.p.raw."lxc.cap.drop"`))
	assert.Equal(t, "", parentPath("version"))
}

// spec/ is pure: no cgo and none of stint's own packages (DESIGN.md).
func TestSpecImportsNothingOfOurs(t *testing.T) {
	testenv.RequiresTool(t, "go")
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{len .CgoFiles}}", ".").Output()
	require.NoError(t, err)
	deps := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Greater(t, len(deps), 10, "go list printed the dependencies")
	for _, line := range deps {
		path, cgo, _ := strings.Cut(line, " ")
		assert.False(t, strings.HasPrefix(path, "github.com/stintdev/stint/") && path != "github.com/stintdev/stint/spec", "spec imports %s", path)
		assert.NotEqual(t, "runtime/cgo", path, "spec pulls in cgo")
		assert.Equal(t, "0", cgo, "%s uses cgo", path)
	}
}

// The position scanner must not panic on anything BurntSushi/toml accepts
// (go test -fuzz FuzzScanPositions ./spec to search further).
func FuzzScanPositions(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/specs/*/*.toml")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("a = '''x\n'''''\nb = \"\"\"\\\n\"\"\"\n[[c]]\n[c.d]\ne = 1\n")
	f.Fuzz(func(t *testing.T, src string) {
		var m map[string]any
		if _, err := toml.Decode(src, &m); err != nil {
			return
		}
		pos := scanPositions(src)
		for k := range m {
			if _, ok := pos[join("", k)]; !ok {
				t.Errorf("no position for top-level key %q", k)
			}
		}
	})
}
