package runner

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/spec"
)

// TestParseGen: a generation id names its cache; nothing else parses, so
// that pruning one cache never touches another's volumes (a cache whose
// name extends another's, an image's golden volume, a job's copy).
func TestParseGen(t *testing.T) {
	for _, k := range []cacheKey{{name: "go"}, {name: "go", privileged: true}, {name: "a.b-c_d"}, {name: "x"}} {
		id := k.newGen()
		got, ok := parseGen(id)
		assert.True(t, ok, id)
		assert.Equal(t, k, got, id)
	}
	for _, id := range []string{
		"golden-0123456789abcdef-100000", "stint-job-1234abcd.cache0", "cache.u.go", "cache.x.go.0123456789ab",
		"cache.u.go.0123456789ag", "cache.u..0123456789ab", "cache.u.go-0123456789ab", "cache.u.go.0123456789abc",
	} {
		_, ok := parseGen(id)
		assert.False(t, ok, id)
	}
	a, _ := parseGen(cacheKey{name: "go"}.newGen())
	b, _ := parseGen(cacheKey{name: "go.x"}.newGen())
	assert.NotEqual(t, a, b)
}

// TestIsCacheCopyOf: a container's copies are told by name, and only its.
func TestIsCacheCopyOf(t *testing.T) {
	assert.True(t, isCacheCopyOf(cacheCopyID("stint-a-12", 0), "stint-a-12"))
	assert.True(t, isCacheCopyOf(cacheCopyID("s.web", 12), "s.web"))
	for _, id := range []string{"stint-a-12", "stint-a-12.cache", "stint-a-12.cachex", "stint-a-12.cache1.cache2", "stint-a-123.cache0", "x.cache0"} {
		assert.False(t, isCacheCopyOf(id, "stint-a-12"), id)
	}
}

// TestCommits: the commit policies against every outcome.
func TestCommits(t *testing.T) {
	all := []Outcome{OutcomePassed, OutcomeFailed, OutcomeTimeout, OutcomeAborted, OutcomeError}
	want := map[string][]Outcome{
		"":                   {OutcomePassed},
		spec.CommitOnSuccess: {OutcomePassed},
		spec.CommitAlways:    {OutcomePassed, OutcomeFailed, OutcomeTimeout},
		spec.CommitNever:     nil,
	}
	for policy, yes := range want {
		for _, o := range all {
			assert.Equal(t, contains(yes, o), commits(policy, o), "commit %q after %s", policy, o)
		}
	}
}

func contains(os []Outcome, o Outcome) bool {
	for _, x := range os {
		if x == o {
			return true
		}
	}
	return false
}

// volumeRuntime is a runtime that keeps cache volumes itself (a remote).
type volumeRuntime struct{ container.Runtime }

func (volumeRuntime) Capabilities() container.Capabilities {
	return container.Capabilities{ImageRoot: true, Volumes: true}
}

// TestRefuseCommitOnRemote: on a runtime with its own cache volumes, a job
// whose cache mount names a commit policy is refused as a usage error
// (exit 2) naming its spec file and line; one without commit runs, as
// does any job locally.
func TestRefuseCommitOnRemote(t *testing.T) {
	pos := spec.Pos{File: "/s/stint.toml", Line: 7}
	plain := spec.Job{Name: "plain", Pos: pos, Mounts: []spec.Mount{{Type: spec.MountCache, Name: "c", Target: "/c"}}}
	asks := spec.Job{Name: "asks", Pos: pos, Mounts: []spec.Mount{{Type: spec.MountCache, Name: "c", Target: "/c", Commit: spec.CommitNever}}}

	remote := &Runner{Runtime: volumeRuntime{}, Remote: "lxd1"}
	assert.NoError(t, remote.refuseCommit([]spec.Job{plain}))
	err := remote.refuseCommit([]spec.Job{plain, asks})
	var ce *CommitUnsupportedError
	require.True(t, errors.As(err, &ce), "%v", err)
	assert.Equal(t, 2, ce.ExitCode())
	assert.Equal(t, "asks", ce.Job)
	assert.Contains(t, err.Error(), "/s/stint.toml:7: job asks: cache mount /c: commit needs stint's own storage pool; remote lxd1")

	local := &Runner{}
	assert.NoError(t, local.refuseCommit([]spec.Job{plain, asks}))
}
