package runner

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/lxdrt"
	"github.com/stintdev/stint/spec"
)

// The started tag of a remote long-lived instance: the spec its PID 1 was
// started from, with the limits LXD applied live; unreadable means a
// restart is still owed.
func TestStartedTag(t *testing.T) {
	old := spec.Container{Name: "web", Image: "busybox", Env: map[string]string{"A": "1"}, Limits: spec.Limits{Memory: 1 << 28}}
	js, err := json.Marshal(old)
	require.NoError(t, err)
	newLimits := spec.Limits{Memory: 1 << 27, Pids: 64}

	var got spec.Container
	require.NoError(t, json.Unmarshal([]byte(startedNow(string(js), newLimits)), &got))
	want := old
	want.Limits = newLimits
	assert.Equal(t, want, got, "the old env, the new limits")
	assert.Equal(t, "{}", startedNow("not json", newLimits))

	for _, tc := range []struct {
		name string
		tag  string
		want *spec.Container
	}{
		{"none owed", "", nil},
		{"owed", startedNow(string(js), newLimits), &want},
		{"unreadable, still owed", "{", &spec.Container{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tags := map[string]string{}
			if tc.tag != "" {
				tags[tagStarted] = tc.tag
			}
			assert.Equal(t, tc.want, startedOf(lxdrt.Instance{Tags: tags}))
		})
	}
}
