package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
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
