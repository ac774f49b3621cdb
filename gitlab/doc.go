// Package gitlab is stint's GitLab Runner custom executor driver: the logic
// behind `stint gitlab config|prepare|run|cleanup`, apart from the engine it
// drives (see Engine), so that all of it is tested without containers.
//
// # How the runner calls a driver
//
// gitlab-runner's custom executor (executors/custom) runs the driver once
// per step of a job, each call a new process in a process group of its own,
// in a temporary directory, with the runner's environment plus the job's
// variables as CUSTOM_ENV_<name> (see Call):
//
//	config              print ConfigOutput as JSON on stdout
//	prepare             make the job's container (Driver.Prepare)
//	run SCRIPT STAGE    once per stage, in order (see Stage)
//	cleanup             always, with a timeout of its own
//
// Exit 0 is success; BUILD_FAILURE_EXIT_CODE (1) is the job's script
// failing, with the script's own status in BUILD_EXIT_CODE_FILE;
// SYSTEM_FAILURE_EXIT_CODE (2) or anything else, a signal included, is a
// system failure. A config or prepare call that fails other than with 1 is
// retried (3 attempts in all, 3s apart), each failed attempt followed by
// cleanup. The runner waits for end of file on the driver's stdout and
// stderr, not only for its exit. When a call's timeout expires it sends
// SIGTERM to the call's process group, then SIGKILL.
//
// # The job between calls
//
// No stint process lives between two calls. Prepare writes a Record naming
// the runner process that called it (pid, start time, boot); run and
// cleanup find the container from the same job ids; `stint gc` and every
// prepare remove the jobs whose runner is gone (SweepJobs).
package gitlab
