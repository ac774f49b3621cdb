package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// SelectJobs picks jobs of a set by name, in the set's order. No names
// selects every job; a name selects a job by its full name ("test[go=1.22]")
// or, by its base name ("test"), all of its matrix variants. An unknown name
// is an error wrapping ErrUnknownJob that lists the known names.
func SelectJobs(set *Set, names []string) ([]Job, error) {
	if len(names) == 0 {
		return append([]Job(nil), set.Jobs...), nil
	}
	want := map[int]bool{}
	var unknown []string
	for _, n := range names {
		found := false
		for i, j := range set.Jobs {
			if j.Name == n || j.Base == n {
				want[i] = true
				found = true
			}
		}
		if !found {
			unknown = append(unknown, fmt.Sprintf("%q", n)+jobHint(set, n))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w %s; known jobs: %s", ErrUnknownJob, strings.Join(unknown, ", "), knownJobs(set))
	}
	var out []Job
	for i, j := range set.Jobs {
		if want[i] {
			out = append(out, j)
		}
	}
	return out, nil
}

// knownJobs lists base names, and the variants of matrix jobs.
func knownJobs(set *Set) string {
	if len(set.Jobs) == 0 {
		return "(none)"
	}
	var names []string
	seen := map[string]bool{}
	for _, j := range set.Jobs {
		if !seen[j.Base] {
			seen[j.Base] = true
			names = append(names, j.Base)
		}
		if j.Name != j.Base {
			names = append(names, j.Name)
		}
	}
	return strings.Join(names, ", ")
}

// Hash is a stable digest of what shapes the container (sha256 of its
// resolved JSON, hex): the reconciler recreates a container whose hash
// changed. What only names or locates it (Name, Pos, the profile names) and
// its desired State (starting or stopping is not a change of the container)
// do not count, nor do Workdir and User: they are where and as whom
// `stint shell` enters, not part of the container. Empty and absent lists and maps hash the same (the JSON
// omits both).
func (c Container) Hash() string {
	c.Name, c.Pos, c.Profiles, c.State = "", Pos{}, nil, ""
	c.Workdir, c.User = "", ""
	b, err := json.Marshal(c)
	if err != nil {
		// Container holds only strings, numbers, bools, maps and slices of
		// those: Marshal cannot fail.
		panic(fmt.Sprintf("spec: marshal container %q: %v", c.Name, err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
