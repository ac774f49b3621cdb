package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCLIRunShellLines: by default a failing pipe fails the job where the
// image's /bin/sh has pipefail (busybox ash does), and the `shell` key of
// a job or a profile replaces /bin/sh -c; on the fast path (stint-agent as
// PID 1) and the attach path alike.
func TestCLIRunShellLines(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[profile.strict]
shell = "sh -e -c"

[job.pipe]
image = "busybox"
run = ["false | true", "echo not-reached"]

[job.pipeok]
image = "busybox"
run = ["true | true", "echo $0 | tee /dev/null"]

[job.strict]
image = "busybox"
profiles = ["strict"]
run = ["false; echo not-reached"]

[job.own]
image = "busybox"
shell = "/bin/sh -c"
run = ["false; echo own-reached"]
`)
	for _, agent := range []string{"", "off"} {
		t.Run("agent="+agent, func(t *testing.T) {
			if agent != "" {
				t.Setenv("STINT_AGENT", agent)
			}
			out, code := f.run(t, "run", p, "pipe")
			assert.Equal(t, 1, code, out)
			assert.Contains(t, out, "line 1 `false | true`: exit 1")
			assert.NotContains(t, out, "[pipe] not-reached")

			out, code = f.run(t, "run", p, "pipeok")
			assert.Equal(t, 0, code, out)
			assert.Contains(t, out, "[pipeok] /bin/sh")

			out, code = f.run(t, "run", p, "strict")
			assert.Equal(t, 1, code, out)
			assert.NotContains(t, out, "[strict] not-reached", "the profile's sh -e stops at false")

			out, code = f.run(t, "run", p, "own")
			assert.Equal(t, 0, code, out)
			assert.Contains(t, out, "[own] own-reached", "the job's own shell has no -e")
		})
	}
	f.assertClean(t)
}

// TestCLIRunShellNoPipefail: pipefail is detected, not assumed. In an image
// whose /bin/sh is dash (Debian's, without pipefail) the default line runs
// as before: no error from the probe, a pipe's status is its last
// command's; where the image also has /bin/bash, bash -o pipefail runs the
// line; `shell` asks for another shell.
func TestCLIRunShellNoPipefail(t *testing.T) {
	f := newCLI(t)
	dash, err := exec.LookPath("dash")
	if err != nil {
		t.Skip("dash not installed")
	}
	// dash and what it links to, as a recipe's files.
	files := map[string]string{"/usr/local/bin/dash": dash}
	for _, lib := range []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"} {
		if _, err := os.Stat(lib); err != nil {
			t.Skipf("%s: not an amd64 Debian host", lib)
		}
		files[lib] = lib
	}
	var decl []string
	for target, src := range files {
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		local := "sys/" + filepath.Base(target) // not beside the spec: `run spec dash` would read ./dash as a spec
		require.NoError(t, os.MkdirAll(filepath.Join(f.dir, "sys"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(f.dir, local), b, 0o755))
		decl = append(decl, fmt.Sprintf("%q = %q", target, local))
	}
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "to-dash.sh"), []byte("ln -sf /usr/local/bin/dash /bin/sh\n"), 0o755))
	// A stand-in for bash beside dash: busybox's ash, which takes
	// `-o pipefail -c` as bash does.
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "sys", "bash"), []byte("#!/bin/busybox sh\nexec /bin/busybox sh \"$@\"\n"), 0o755))
	p := f.spec(t, `
[image.dash]
from = "busybox"
files = { `+strings.Join(decl, ", ")+` }
hooks = ["to-dash.sh"]

[image.dashbash]
from = "busybox"
files = { `+strings.Join(decl, ", ")+`, "/bin/bash" = "sys/bash" }
hooks = ["to-dash.sh"]

[job.dashbash]
image = "dashbash"
run = ["echo $0", "false | true", "echo not-reached"]

[job.dash]
image = "dash"
run = ["readlink /bin/sh", "false | true", "echo reached"]

[job.ash]
image = "dash"
shell = "busybox sh -o pipefail -c"
run = ["false | true", "echo not-reached"]
`)
	out, code := f.run(t, "run", p, "dash")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "[dash] /usr/local/bin/dash\n")
	assert.Contains(t, out, "[dash] reached")
	assert.NotContains(t, out, "pipefail", "the probe says nothing where it fails")

	// With bash in the image, a job without `shell` runs bash -o pipefail.
	out, code = f.run(t, "run", p, "dashbash")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "line 2 `false | true`: exit 1")
	assert.NotContains(t, out, "not-reached")

	out, code = f.run(t, "run", p, "ash")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "line 1 `false | true`: exit 1")
	assert.NotContains(t, out, "[ash] not-reached")
	f.assertClean(t)
}
