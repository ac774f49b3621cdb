package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stintdev/stint/internal/testenv"
)

// TestCLIRunMessages: what a new user mistypes gets a message that helps,
// exit 2, before any container or --root is made: a misspelt job gets a
// did-you-mean, a float matrix value a hint to quote it (file:line), and
// counts their right plural.
func TestCLIRunMessages(t *testing.T) {
	testenv.RequiresRoot(t) // run refuses non-root first
	testenv.RequiresTool(t, "go")
	bin := stintBinary(t)
	f := &cliFixture{dir: t.TempDir()}
	root := filepath.Join(f.dir, "root")
	stint := stintCLI(t, bin, root)
	p := f.spec(t, `
[job.test]
image = "busybox"
run = ["true"]
`)
	out, code := stint("run", p, "tset")
	assert.Equal(t, ExitUsage, code, out)
	assert.Contains(t, out, `unknown job "tset" (did you mean "test"?); known jobs: test`)
	out, code = stint("run", p, "zzzzzz")
	assert.Equal(t, ExitUsage, code, out)
	assert.NotContains(t, out, "did you mean", "nothing close, no guess")

	out, code = stint("validate", p)
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "(1 file): 1 job, 0 containers, 1 image, 0 profiles")

	p = f.spec(t, `
[job.test]
image = "busybox"
run = ["true"]
[job.test.matrix]
go = [1.20, 1]
`)
	out, code = stint("run", p)
	assert.Equal(t, ExitUsage, code, out)
	assert.Contains(t, out, p+`:11:7: job.test.matrix.go[0]: matrix value 1.20 is a float (TOML reads it as 1.2); quote it: "1.20"`)
	assert.NoDirExists(t, filepath.Join(root, "containers"))
}
