package runner

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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

// TestDefaultShell: bash with pipefail only where /bin/sh is a link to
// dash and /bin/bash exists, both resolved inside the root (merged /usr,
// a link aiming out of the root).
func TestDefaultShell(t *testing.T) {
	for _, tc := range []struct {
		name  string
		links map[string]string // path → link target
		files []string
		want  string
	}{
		{"debian", map[string]string{"bin/sh": "dash"}, []string{"bin/dash", "bin/bash"}, bashPipefail},
		{"merged usr", map[string]string{"bin": "usr/bin", "usr/bin/sh": "/usr/bin/dash"}, []string{"usr/bin/dash", "usr/bin/bash"}, bashPipefail},
		{"dash without bash", map[string]string{"bin/sh": "dash"}, []string{"bin/dash"}, ""},
		{"busybox", map[string]string{"bin/sh": "busybox", "bin/bash": "busybox"}, []string{"bin/busybox"}, ""},
		{"sh is a file", nil, []string{"bin/sh", "bin/bash"}, ""},
		{"bash out of the root", map[string]string{"bin/sh": "dash", "bin/bash": "../../../../../usr/bin/bash-nowhere"}, []string{"bin/dash"}, ""},
		{"no bin", nil, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755))
				require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o755))
			}
			for p, target := range tc.links {
				require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
				require.NoError(t, os.Symlink(target, filepath.Join(dir, p)))
			}
			assert.Equal(t, tc.want, defaultShell(dir))
		})
	}
	assert.Empty(t, defaultShell(""), "a runtime with its own storage")
}
