package runner

import (
	"errors"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLineArgvShellKey(t *testing.T) {
	assert.Equal(t, []string{"bash", "-eo", "pipefail", "-c", "a | b"}, lineArgv("bash  -eo pipefail -c", "a | b"))
	argv := lineArgv("", "make test | tee out")
	assert.Equal(t, []string{"/bin/sh", "-c"}, argv[:2])
	assert.Len(t, argv, 3)
}

// TestDefaultLinePipefail runs the default line through the host's shells
// in /bin/sh's place: a pipe fails where the shell has pipefail, the line
// still runs where it hasn't (dash exits on a bad `set -o` without the
// probe's `command`), and $? starts at 0 either way.
func TestDefaultLinePipefail(t *testing.T) {
	for _, tc := range []struct {
		shell    []string
		pipefail bool
	}{
		{[]string{"busybox", "sh"}, true},
		{[]string{"bash"}, true},
		{[]string{"dash"}, false}, // 0.5.12 (Debian 12) has no pipefail
	} {
		t.Run(tc.shell[0], func(t *testing.T) {
			if _, err := exec.LookPath(tc.shell[0]); err != nil {
				t.Skipf("%s not installed", tc.shell[0])
			}
			run := func(line string) (string, int) {
				argv := lineArgv("", line)
				cmd := exec.Command(tc.shell[0], append(tc.shell[1:], argv[1:]...)...)
				out, err := cmd.CombinedOutput()
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					return string(out), ee.ExitCode()
				}
				require.NoError(t, err)
				return string(out), 0
			}
			out, code := run("false | true")
			assert.Empty(t, out)
			if tc.pipefail {
				assert.Equal(t, 1, code, "a failing pipe fails the line")
			} else {
				assert.Equal(t, 0, code, "no pipefail: the pipe's status is its last command's")
			}
			out, code = run(`echo "status $?"; exit 7`)
			assert.Equal(t, "status 0\n", out)
			assert.Equal(t, 7, code)
			out, _ = run("nosuchcommand-xyz")
			assert.Contains(t, out, "nosuchcommand-xyz")
			assert.NotContains(t, out, ": 2:", "line numbers stay the user's")
		})
	}
}
