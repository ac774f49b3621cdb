package runnertest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestShellEscape: the runner's own cases (helpers/shell_escape_test.go).
func TestShellEscape(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{"unquoted", "unquoted"},
		{"standard string", "$'standard string'"},
		{"+\t\n\r&", "$'+\\t\\n\\r&'"},
		{"", "''"},
		{"hello, 世界", "$'hello, \\xe4\\xb8\\x96\\xe7\\x95\\x8c'"},
		{"blackslash \\n", "$'blackslash \\\\n'"},
		{"f", "f"},
		{"\f", "$'\\f'"},
		{"export variable='test' && echo $variable", "$'export variable=\\'test\\' && echo $variable'"},
		{"$HOME", `$'$HOME'`},
		{"'$HOME'", `$'\'$HOME\''`},
	} {
		if got := ShellEscape(c.in); got != c.out {
			t.Errorf("ShellEscape(%q) = %s, want %s", c.in, got, c.out)
		}
	}
}

// TestScriptShells runs a generated build_script under each shell a
// container may have: bash and busybox ash run it, dash (Debian's sh) can't
// read $'…', which is why the runner's shell must be bash there.
func TestScriptShells(t *testing.T) {
	dir := t.TempDir()
	r := &run{job: Job{ID: 1, Script: []string{`echo "$TRICKY"`, "echo after"},
		Variables: []Variable{{Key: "TRICKY", Value: "it's a \"test\"\twith $HOME and 世界"}}}, status: "running",
		opts: Options{}.withDefaults(), projectDir: dir}
	r.job.defaults()
	for _, c := range []struct {
		shell []string
		ok    bool
	}{
		{[]string{"bash"}, true},
		{[]string{"busybox", "sh"}, true},
		{[]string{"dash"}, false},
	} {
		if _, err := exec.LookPath(c.shell[0]); err != nil {
			t.Logf("%s: not installed", c.shell[0])
			continue
		}
		r.job.Shell = c.shell[len(c.shell)-1]
		script, _ := r.stageScript("build_script")
		if !strings.HasPrefix(script, "#!/usr/bin/env "+r.job.Shell+"\n") {
			t.Errorf("script starts %q", strings.SplitN(script, "\n", 2)[0])
		}
		f := filepath.Join(dir, "script")
		if err := os.WriteFile(f, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(c.shell[0], append(c.shell[1:], f)...).CombinedOutput()
		want := "it's a \"test\"\twith $HOME and 世界\n"
		got := string(out)
		if c.ok && (err != nil || !strings.Contains(got, want) || !strings.Contains(got, "after")) {
			t.Errorf("%s: %v\n%s", c.shell, err, out)
		}
		if !c.ok && err == nil {
			t.Errorf("%s ran a script with $'…' quoting: %s", c.shell, out)
		}
		if !c.ok {
			continue
		}
		// pipefail: a failing command on the left of a pipe fails the job.
		r.job.Script = []string{"false | true", "echo unreachable"}
		script, _ = r.stageScript("build_script")
		_ = os.WriteFile(f, []byte(script), 0o700)
		out, err = exec.Command(c.shell[0], append(c.shell[1:], f)...).CombinedOutput()
		if err == nil || strings.Contains(string(out), "\nunreachable") {
			t.Errorf("%s: pipefail not set: %v\n%s", c.shell, err, out)
		}
		r.job.Script = []string{`echo "$TRICKY"`, "echo after"}
	}
}
