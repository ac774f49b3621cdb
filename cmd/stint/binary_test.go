package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/runner"
)

// The one harness of the CLI tests that need a real binary (the LXC runtime
// re-execs its own executable; signals and kill -9 must hit a separate
// process): stintBinary builds it once per test process; builtStint and
// newCLI (cli_test.go) give each test a fresh directory for its --root and
// specs; stintCLI runs it.

func TestMain(m *testing.M) {
	runner.Reexec() // tests that open a Host in process need the helpers
	code := m.Run()
	if stintBin != "" {
		os.RemoveAll(filepath.Dir(stintBin))
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	stintBin  string
	buildErr  error
)

func stintBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "stint-bin-")
		if err != nil {
			buildErr = err
			return
		}
		stintBin = filepath.Join(dir, "stint")
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = "/usr/local/go/bin/go"
		}
		out, err := exec.Command(goBin, "build", "-o", stintBin, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New("go build stint: " + err.Error() + "\n" + string(out))
			return
		}
		// stint-agent beside stint, as `make build` installs it: the
		// tests run jobs on the fast path (runner/lxcrt/agent.go). Its
		// directory must let the containers' mapped root reach it.
		agent := exec.Command(goBin, "build", "-o", filepath.Join(dir, "stint-agent"), "../stint-agent")
		agent.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := agent.CombinedOutput(); err != nil {
			buildErr = errors.New("go build stint-agent: " + err.Error() + "\n" + string(out))
			return
		}
		buildErr = os.Chmod(dir, 0o755)
	})
	require.NoError(t, buildErr)
	return stintBin
}

// builtStint returns the stint binary and a fresh temporary directory that
// the containers' mapped root can traverse (roots go under it).
func builtStint(t *testing.T) (bin, dir string) {
	t.Helper()
	testenv.RequiresLXC(t)
	testenv.RequiresTool(t, "go", "busybox")
	dir = t.TempDir()
	testenv.Reachable(t, dir) // the mapped root must reach --root
	return stintBinary(t), dir
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
