package gitlab

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseCall(t *testing.T) {
	c, err := ParseCall([]string{
		"PATH=/usr/bin", "BUILD_FAILURE_EXIT_CODE=11", "SYSTEM_FAILURE_EXIT_CODE=12",
		"BUILD_EXIT_CODE_FILE=/tmp/x/build_exit_code", "JOB_RESPONSE_FILE=/tmp/x/response.json", "TMPDIR=/tmp/x",
		"CUSTOM_ENV_CI_JOB_ID=7", "CUSTOM_ENV_CI_JOB_SERVICES=", "CUSTOM_ENV_A=b=c", "CUSTOM_ENV_A=d", "junk",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.BuildFailureCode != 11 || c.SystemFailureCode != 12 || c.BuildExitCodeFile != "/tmp/x/build_exit_code" ||
		c.JobResponseFile != "/tmp/x/response.json" || c.TmpDir != "/tmp/x" {
		t.Errorf("ParseCall = %+v", c)
	}
	if c.Vars["CI_JOB_ID"] != "7" || c.Vars["A"] != "d" || len(c.Vars) != 3 {
		t.Errorf("Vars = %v", c.Vars)
	}
	c, err = ParseCall([]string{"BUILD_FAILURE_EXIT_CODE=one"})
	if !errors.Is(err, ErrBadExitCode) || c.BuildFailureCode != 1 || c.SystemFailureCode != 2 {
		t.Errorf("bad code: %+v, %v", c, err)
	}
}

func TestExitCodes(t *testing.T) {
	call := Call{BuildFailureCode: 1, SystemFailureCode: 2, BuildExitCodeFile: filepath.Join(t.TempDir(), "code")}
	cases := []struct {
		err  error
		want int
		file string
	}{
		{nil, 0, ""},
		{&BuildFailure{Stage: StageBuild, Code: 42}, 1, "42\n"},
		{errors.New("lxc: boom"), 2, ""},
		{&ConfigError{}, 2, ""},
		{&ImageError{Err: ErrImageNotAllowed}, 2, ""},
		{ErrNotPrepared, 2, ""},
	}
	for _, c := range cases {
		_ = os.Remove(call.BuildExitCodeFile)
		if got := call.Finish(c.err, func(err error) { t.Error(err) }); got != c.want {
			t.Errorf("Finish(%v) = %d, want %d", c.err, got, c.want)
		}
		data, _ := os.ReadFile(call.BuildExitCodeFile)
		if string(data) != c.file {
			t.Errorf("Finish(%v) wrote %q, want %q", c.err, data, c.file)
		}
	}
}

// forbidden reports the variables of env that come from the driver's own
// environment and must never reach the container.
func forbidden(env []string) []string {
	var bad []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, JobVarPrefix) || strings.Contains(k, "_EXIT_CODE") ||
			k == EnvJobResponseFile || k == EnvTmpDir || strings.HasPrefix(k, "CI_") || strings.HasPrefix(k, "RUNNER_") {
			bad = append(bad, kv)
		}
	}
	return bad
}

func TestContainerEnv(t *testing.T) {
	env := ContainerEnv(map[string]string{"LANG": "C.UTF-8", "PATH": "/opt/bin"})
	want := "HOME=/root LANG=C.UTF-8 PATH=/opt/bin"
	if got := strings.Join(env, " "); got != want {
		t.Errorf("ContainerEnv = %s, want %s", got, want)
	}
}
