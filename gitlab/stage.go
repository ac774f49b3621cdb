package gitlab

import "strings"

// A Stage is the second argument of `run`: the build stage the runner's
// script belongs to (gitlab-runner common/build.go, BuildStage*).
type Stage string

// The stages of a job in the order the runner calls them. A stage with
// nothing to do (no cache, no artifacts, no after_script) is not called.
// The user's script arrives as build_script: the custom executor renames the
// runner's step_script to build_script; other steps arrive as step_<name>.
const (
	StagePrepare                  Stage = "prepare_script"
	StageGetSources               Stage = "get_sources"
	StageClearWorktree            Stage = "clear_worktree" // between get_sources retries
	StageRestoreCache             Stage = "restore_cache"
	StageDownloadArtifacts        Stage = "download_artifacts"
	StageBuild                    Stage = "build_script"
	StageAfterScript              Stage = "after_script"
	StageArchiveCache             Stage = "archive_cache"
	StageArchiveCacheOnFailure    Stage = "archive_cache_on_failure"
	StageUploadArtifactsOnSuccess Stage = "upload_artifacts_on_success"
	StageUploadArtifactsOnFailure Stage = "upload_artifacts_on_failure"
	StageCleanupFileVariables     Stage = "cleanup_file_variables"
)

// Always reports whether the runner calls stage however the stages before it
// ended (when it has something to do): after_script runs after the user's
// script whether it passed or failed (CI_JOB_STATUS says which), the
// on-failure archive and upload stages and cleanup_file_variables run even
// after a failing get_sources. A failing prepare_script still skips every
// later stage, and a failing get_sources, restore_cache or download_artifacts
// skips the user's script and after_script. The `cleanup` call itself always
// follows a successful or failed `prepare`.
func (s Stage) Always() bool {
	switch s {
	case StageAfterScript, StageArchiveCacheOnFailure, StageUploadArtifactsOnFailure, StageCleanupFileVariables:
		return true
	}
	return false
}

// User reports whether stage runs the job's own script lines: build_script
// or another step (step_<name>, e.g. step_release).
func (s Stage) User() bool {
	return s == StageBuild || strings.HasPrefix(string(s), "step_")
}

// Known reports whether the runner documents s (a step_* stage included).
func (s Stage) Known() bool {
	switch s {
	case StagePrepare, StageGetSources, StageClearWorktree, StageRestoreCache, StageDownloadArtifacts,
		StageBuild, StageAfterScript, StageArchiveCache, StageArchiveCacheOnFailure,
		StageUploadArtifactsOnSuccess, StageUploadArtifactsOnFailure, StageCleanupFileVariables:
		return true
	}
	return strings.HasPrefix(string(s), "step_") && len(s) > len("step_")
}

// failsJob reports whether a failure in stage makes the job fail. An
// after_script failure does not by default (AFTER_SCRIPT_IGNORE_ERRORS).
func (s Stage) failsJob() bool { return s != StageAfterScript }
