package runnertest

import (
	"encoding/json"
	"path/filepath"
	"strconv"
)

// variables is Build.GetAllVariables for the harness's job, in the
// runner's order (feature flags left out): CI_JOB_IMAGE when the job names
// an image, the runner's, the build's defaults, GitLab's predefined ones,
// the job's own, then those after the job's.
func (r *run) variables() []Variable {
	var vs []Variable
	add := func(k, v string) { vs = append(vs, Variable{Key: k, Value: v}) }
	j := r.job
	if j.Image != "" {
		add("CI_JOB_IMAGE", j.Image)
	}
	add("CI_RUNNER_SHORT_TOKEN", "t0k3n")
	add("CI_BUILDS_DIR", r.buildsDir)
	add("CI_PROJECT_DIR", r.projectDir)
	add("CI_CONCURRENT_ID", "0")
	add("CI_CONCURRENT_PROJECT_ID", strconv.FormatInt(j.ConcurrentProjectID, 10))
	add("CI_SERVER", "yes")
	add("CI_JOB_STATUS", r.status)
	add("CI_JOB_TIMEOUT", strconv.FormatInt(int64(r.opts.JobTimeout.Seconds()), 10))
	// From GitLab's job payload.
	add("CI_JOB_ID", strconv.FormatInt(j.ID, 10))
	add("CI_JOB_TOKEN", "glcbt-s3cr3t")
	add("CI_PROJECT_ID", strconv.FormatInt(j.ProjectID, 10))
	add("CI_PROJECT_PATH", j.ProjectPath)
	add("CI_RUNNER_ID", strconv.FormatInt(j.RunnerID, 10))
	add("CI_SERVER_URL", j.ServerURL)
	add("CI_PIPELINE_ID", "1")
	vs = append(vs, j.Variables...)
	// The custom executor declares itself shared (features.Shared).
	add("CI_SHARED_ENVIRONMENT", "true")
	add("CI_RUNNER_VERSION", "18.7.0~runnertest")
	add("RUNNER_TEMP_PROJECT_DIR", r.projectDir+".tmp")
	return vs
}

// env is a driver call's environment (command.New, executor.prepareCommand):
// the runner's own, the five variables of the custom executor, job_env from
// config, then CUSTOM_ENV_ for every job variable and CI_JOB_SERVICES
// (empty without services).
func (r *run) env() []string {
	env := append([]string{}, r.opts.Env...)
	env = append(env,
		"TMPDIR="+r.tempDir,
		"BUILD_FAILURE_EXIT_CODE="+strconv.Itoa(buildFailureExitCode),
		"SYSTEM_FAILURE_EXIT_CODE="+strconv.Itoa(systemFailureExitCode),
		"BUILD_EXIT_CODE_FILE="+filepath.Join(r.tempDir, "build_exit_code"),
		"JOB_RESPONSE_FILE="+filepath.Join(r.tempDir, "response.json"))
	if r.cfg.JobEnv != nil {
		for k, v := range *r.cfg.JobEnv {
			env = append(env, k+"="+v)
		}
	}
	for _, v := range r.variables() {
		env = append(env, "CUSTOM_ENV_"+v.Key+"="+v.Value)
	}
	services := ""
	if len(r.job.Services) > 0 {
		b, _ := json.Marshal(r.job.Services)
		services = string(b)
	}
	return append(env, "CUSTOM_ENV_CI_JOB_SERVICES="+services)
}
