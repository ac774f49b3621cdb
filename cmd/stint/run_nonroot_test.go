package main

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
)

// TestCLINonRootOneLine: a user who is not root gets one line saying that
// the command needs root and why, exit 3 (the host, as this user, can't),
// before anything is touched; commands that make no container still work.
func TestCLINonRootOneLine(t *testing.T) {
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, "go", "busybox")
	bin := stintBinary(t)
	dir := t.TempDir()
	testenv.Reachable(t, dir)
	f := &cliFixture{dir: dir}
	p := f.spec(t, "[job.test]\nimage = \"busybox\"\nrun = [\"true\"]\n")
	root := dir + "/root" // never made: nothing may be created
	asNobody := func(args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		require.NoError(t, err, "%s", out)
		return string(out), 0
	}
	for cmd, args := range map[string][]string{
		"run": {"run", p, "test"}, "gc": {"gc"}, "exec": {"exec", "busybox", "--", "true"}, "image build": {"image", "build", p, "busybox"},
	} {
		out, code := asNobody(args...)
		assert.Equal(t, ExitHost, code, "%v: %s", args, out)
		assert.Equal(t, 1, strings.Count(out, "\n"), "one line: %q", out)
		assert.Contains(t, out, "stint "+cmd+" needs root: only root can make, enter or remove LXC containers")
		assert.Contains(t, out, "sudo")
		assert.NoDirExists(t, root, "%v made --root", args)
	}
	out, code := asNobody("validate", p)
	assert.Equal(t, 0, code, out)
}
