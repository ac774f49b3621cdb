package gitlab

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
)

// The job variables that name a job's container (all set by GitLab or the
// runner for every job, gitlab-runner common/build.go).
const (
	VarRunnerID            = "CI_RUNNER_ID"             // the runner, unique on its GitLab instance
	VarProjectID           = "CI_PROJECT_ID"            // the project
	VarConcurrentProjectID = "CI_CONCURRENT_PROJECT_ID" // the job's slot among the runner's jobs of this project
	VarJobID               = "CI_JOB_ID"                // the job, unique on its GitLab instance
	VarServerURL           = "CI_SERVER_URL"            // the GitLab instance
	VarJobImage            = "CI_JOB_IMAGE"             // only when the job names an image
	VarJobServices         = "CI_JOB_SERVICES"          // JSON, see ParseServices
)

// ContainerName names a job's container from its ids:
// gitlab-<instance>-r<runner>-p<project>-c<concurrent>-j<job>, where
// <instance> is 6 hex digits of a hash of CI_SERVER_URL. Job ids are unique
// per GitLab instance, so two runners on one host (of one instance or of
// two) never collide, and a retried prepare of the same job finds its own
// leftovers. The name is a valid LXC name and host name (at most 63
// characters of a-z, 0-9 and -). A missing or non-numeric id is an error
// wrapping ErrNoJobIDs.
func ContainerName(vars map[string]string) (string, error) {
	ids := make([]uint64, 4)
	for i, k := range []string{VarRunnerID, VarProjectID, VarConcurrentProjectID, VarJobID} {
		n, err := strconv.ParseUint(vars[k], 10, 64)
		if err != nil {
			return "", fmt.Errorf("%w: %s=%q", ErrNoJobIDs, k, vars[k])
		}
		ids[i] = n
	}
	sum := sha256.Sum256([]byte(vars[VarServerURL]))
	// At most 6+1+6+4*(2+20) = 101 characters in theory, 45 for real ids;
	// drop the concurrency slot and the runner when longer than 56, leaving
	// room for a service suffix (-s<i>) within 63.
	name := fmt.Sprintf("gitlab-%s-r%d-p%d-c%d-j%d", hex.EncodeToString(sum[:3]), ids[0], ids[1], ids[2], ids[3])
	if len(name) > 56 {
		name = fmt.Sprintf("gitlab-%s-p%d-j%d", hex.EncodeToString(sum[:3]), ids[1], ids[3])
	}
	return name, nil
}

// serviceName names the container of a job's i-th service.
func serviceName(job string, i int) string { return fmt.Sprintf("%s-s%d", job, i) }
