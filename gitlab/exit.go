package gitlab

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Sentinel errors, checked with errors.Is. Every one of them is a system
// failure for the runner.
var (
	ErrBadExitCode     = errors.New("exit code variable is not a number from 0 to 255")
	ErrImageNotAllowed = errors.New("image not allowed by the driver config")
	ErrImageUnknown    = errors.New("image not found")
	ErrNoJobIDs        = errors.New("job ids missing from the runner's environment")
	ErrNotPrepared     = errors.New("job not prepared")
	ErrBadService      = errors.New("bad service")
)

// BuildFailure is a job script that ran and failed: the runner reports it
// as the job's failure (script_failure), not the host's.
type BuildFailure struct {
	Stage Stage
	Code  int // the script's exit status
}

func (e *BuildFailure) Error() string {
	return fmt.Sprintf("stage %s: script exited with status %d", e.Stage, e.Code)
}

// ExitCode is the driver's exit status for the outcome err of a call: 0 for
// nil, the runner's build failure code for a *BuildFailure, its system
// failure code for anything else (a config, prepare, image or engine error).
func (c Call) ExitCode(err error) int {
	var bf *BuildFailure
	switch {
	case err == nil:
		return 0
	case errors.As(err, &bf):
		return c.BuildFailureCode
	default:
		return c.SystemFailureCode
	}
}

// Finish turns a call's outcome into the driver's exit status, and for a
// build failure writes the script's own exit status to BUILD_EXIT_CODE_FILE,
// so the job log shows the script's code, not the driver's. When that file
// cannot be written the runner would see a plain build failure (exit 1);
// Finish says so through warn and still returns the build failure code.
func (c Call) Finish(err error, warn func(error)) int {
	var bf *BuildFailure
	if errors.As(err, &bf) && c.BuildExitCodeFile != "" {
		data := []byte(strconv.Itoa(bf.Code) + "\n")
		if werr := os.WriteFile(c.BuildExitCodeFile, data, 0o600); werr != nil && warn != nil {
			warn(fmt.Errorf("write build exit code file %s: %w", c.BuildExitCodeFile, werr))
		}
	}
	return c.ExitCode(err)
}
