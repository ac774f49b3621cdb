package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildLogs reads the build logs of image name under f's root.
func (f *cliFixture) buildLogs(t *testing.T, name string) string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(f.root, "logs", "stint-image-"+name+"-*.log"))
	require.NoError(t, err)
	var all strings.Builder
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		all.Write(b)
	}
	return all.String()
}

// A recipe build's output goes to its build log, not the terminal; -v
// streams it, prefixed [image NAME].
func TestCLIBuildLogQuiet(t *testing.T) {
	f := newCLI(t)
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "hook.sh"), []byte("echo marker-from-hook\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "hook2.sh"), []byte("echo marker-from-second\n"), 0o644))
	p := f.spec(t, `
[image.quiet]
from = "busybox"
hooks = ["hook.sh"]

[image.loud]
from = "busybox"
hooks = ["hook2.sh"]

[job.use]
image = "quiet"
run = ["true"]
`)
	out, code := f.run(t, "run", p)
	require.Equal(t, 0, code, out)
	assert.NotContains(t, out, "marker-from-hook", "the build's output reached the terminal without -v")
	assert.Contains(t, out, "[use] image: ready in ", "the progress line stays")
	assert.Contains(t, f.buildLogs(t, "quiet"), "marker-from-hook\n")

	out, code = f.run(t, "image", "build", p, "loud")
	require.Equal(t, 0, code, out)
	assert.NotContains(t, out, "marker-from-second")
	assert.Contains(t, f.buildLogs(t, "loud"), "marker-from-second\n")

	// -v streams a build (a changed hook: a new build).
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "hook2.sh"), []byte("echo marker-verbose\n"), 0o644))
	out, code = f.run(t, "image", "build", "-v", p, "loud")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "[image loud] marker-verbose\n")
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "hook.sh"), []byte("echo marker-verbose-run\n"), 0o644))
	out, code = f.run(t, "--verbose", "run", p)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "[image quiet] marker-verbose-run\n")
	assert.Contains(t, f.buildLogs(t, "quiet"), "marker-verbose-run\n", "the log has it with -v too")
	f.assertClean(t)
}

// A failed build shows its log's last lines and path, with the exit code
// of a failed hook (1), from `image build` and from `run`.
func TestCLIBuildLogFailure(t *testing.T) {
	f := newCLI(t)
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "fail.sh"), []byte("for i in $(seq 1 30); do echo line $i; done\nexit 3\n"), 0o644))
	p := f.spec(t, `
[image.broken]
from = "busybox"
hooks = ["fail.sh"]

[job.on-broken]
image = "broken"
run = ["true"]
`)
	logRe := regexp.MustCompile(`build log: (\S+/logs/stint-image-broken-[0-9a-f]+\.log)`)
	for _, args := range [][]string{{"image", "build", p, "broken"}, {"run", p}} {
		out, code := f.run(t, args...)
		assert.Equal(t, 1, code, out)
		assert.Contains(t, out, "fail.sh: exit 3")
		for i := 11; i <= 30; i++ {
			assert.Contains(t, out, fmt.Sprintf("\n    | line %d\n", i), "the last 20 lines")
		}
		assert.NotContains(t, out, "| line 10\n", "only the last 20 lines")
		assert.NotContains(t, out, "[image broken]", "streamed without -v")
		m := logRe.FindStringSubmatch(out)
		require.NotNil(t, m, "the error names the build log: %s", out)
		b, err := os.ReadFile(m[1])
		require.NoError(t, err)
		assert.Contains(t, string(b), "line 1\nline 2\n", "the log has the whole output")
	}
	f.assertClean(t)
}
