package gitlab

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Variables the runner sets for every driver call (gitlab-runner
// executors/custom/api/const.go and command/command.go).
const (
	EnvBuildFailureExitCode  = "BUILD_FAILURE_EXIT_CODE"
	EnvSystemFailureExitCode = "SYSTEM_FAILURE_EXIT_CODE"
	EnvBuildExitCodeFile     = "BUILD_EXIT_CODE_FILE"
	EnvJobResponseFile       = "JOB_RESPONSE_FILE"
	EnvTmpDir                = "TMPDIR"
	// JobVarPrefix prefixes every job variable in the driver's environment.
	JobVarPrefix = "CUSTOM_ENV_"
)

// The exit codes a runner passes when its environment does not say.
const (
	DefaultBuildFailureExitCode  = 1
	DefaultSystemFailureExitCode = 2
)

// Call is one invocation of the driver by the runner, as its environment
// describes it. The runner's environment is, in order: its own process
// environment, TMPDIR and the four variables above, job_env from `config`,
// then CUSTOM_ENV_<name> for every job variable (CUSTOM_ENV_CI_JOB_SERVICES
// always, empty without services; CUSTOM_ENV_CI_JOB_IMAGE only when the job
// names an image).
type Call struct {
	Vars              map[string]string // job variables, without the CUSTOM_ENV_ prefix
	BuildFailureCode  int
	SystemFailureCode int
	BuildExitCodeFile string // where the script's own exit code may be written
	JobResponseFile   string
	TmpDir            string
}

// ParseCall reads a Call from an environment (os.Environ()); a later
// duplicate wins, as for exec. An exit code variable that is present but not
// a number is an error; the Call still carries the defaults, so the caller
// can exit with a system failure.
func ParseCall(environ []string) (Call, error) {
	c := Call{
		Vars:              map[string]string{},
		BuildFailureCode:  DefaultBuildFailureExitCode,
		SystemFailureCode: DefaultSystemFailureExitCode,
	}
	var bad []string
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(k, JobVarPrefix):
			c.Vars[strings.TrimPrefix(k, JobVarPrefix)] = v
		case k == EnvBuildFailureExitCode:
			if !parseCode(v, &c.BuildFailureCode) {
				bad = append(bad, kv)
			}
		case k == EnvSystemFailureExitCode:
			if !parseCode(v, &c.SystemFailureCode) {
				bad = append(bad, kv)
			}
		case k == EnvBuildExitCodeFile:
			c.BuildExitCodeFile = v
		case k == EnvJobResponseFile:
			c.JobResponseFile = v
		case k == EnvTmpDir:
			c.TmpDir = v
		}
	}
	if len(bad) > 0 {
		return c, fmt.Errorf("runner environment: %w: %s", ErrBadExitCode, strings.Join(bad, ", "))
	}
	return c, nil
}

func parseCode(v string, dst *int) bool {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > 255 {
		return false
	}
	*dst = n
	return true
}

// DefaultPath is PATH inside a job's container.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ContainerEnv is the whole environment of a stage's script in the
// container: PATH, HOME, then the driver profile's env, sorted. Nothing of
// the driver's own environment is in it (no CUSTOM_ENV_*, no *_EXIT_CODE*,
// no JOB_RESPONSE_FILE, no runner variable): the runner's script exports
// the job's variables itself.
func ContainerEnv(profile map[string]string) []string {
	env := map[string]string{"PATH": DefaultPath, "HOME": "/root"}
	for k, v := range profile {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
