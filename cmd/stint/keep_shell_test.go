package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCLIKeptJobShellLine: `run --keep-on-failure` ends a failed job's
// summary with the `stint shell …` line that enters it; pasted into a shell
// (from another directory, with a --root that needs quoting) it enters the
// kept job, whose copy of the cache holds what the job wrote while the
// cache itself is untouched; `gc --kept` then removes the job and its copy.
func TestCLIKeptJobShellLine(t *testing.T) {
	f := newCacheCLI(t, cacheDrivers[0])
	f.root = filepath.Join(f.root, "a root's dir")
	require.NoError(t, os.Mkdir(f.root, 0o755))
	p := f.spec(t, `
[job.seed]
image = "busybox"
run = ["echo v1 > /c/a"]
mount = [{ type = "cache", name = "dbg", target = "/c" }]

[job.broken]
image = "busybox"
run = ["echo poison > /c/a", "exit 3"]
env = { WHO = "the-job" }
mount = [{ type = "cache", name = "dbg", target = "/c" }]
`)
	out, code := f.run(t, "run", p, "seed")
	require.Equal(t, 0, code, out)
	out, code = f.run(t, "run", "--keep-on-failure", p, "broken")
	require.Equal(t, 1, code, out)
	m := regexp.MustCompile(`(?m)^\s+debug: (.*)$`).FindStringSubmatch(out)
	require.NotNil(t, m, "no debug line in:\n%s", out)
	line := m[1]
	assert.Contains(t, line, `stint --root '`+strings.ReplaceAll(f.root, "'", `'\''`)+`' shell stint-broken-`)

	sh := exec.Command("sh", "-c", line+` -- sh -c 'echo "in=$(cat /c/a) who=$WHO"'`)
	sh.Dir = t.TempDir() // no spec here: the kept job needs none
	sh.Env = append(os.Environ(), "PATH="+filepath.Dir(f.bin)+":"+os.Getenv("PATH"))
	got, err := sh.CombinedOutput()
	require.NoError(t, err, "the printed line %q failed:\n%s", line, got)
	assert.Contains(t, string(got), "in=poison who=the-job", "the printed line did not enter the kept job")
	assert.Contains(t, f.cacheTree(t, "dbg")["a"], "v1", "the kept failed job changed the cache")

	out, code = f.run(t, "gc", "--kept")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "stint-broken-")
	f.assertOnlyCaches(t, "dbg")
}
