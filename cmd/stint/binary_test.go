package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
)

// builtStint builds the stint binary into a fresh temporary directory that
// the containers' mapped root can traverse (roots go under it), for tests
// that need a real binary: the LXC runtime re-execs its own executable.
func builtStint(t *testing.T) (bin, dir string) {
	t.Helper()
	testenv.RequiresLXC(t)
	testenv.RequiresTool(t, "go", "busybox")
	dir = t.TempDir()
	testenv.Reachable(t, dir) // the mapped root must reach --root
	bin = filepath.Join(dir, "stint")
	built, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", built)
	return bin, dir
}

// stintCLI returns a function running bin with --root root: its combined
// output and exit code.
func stintCLI(t *testing.T, bin, root string) func(args ...string) (string, int) {
	return func(args ...string) (string, int) {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"--root", root}, args...)...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		require.NoError(t, err, "%s", out)
		return string(out), 0
	}
}
