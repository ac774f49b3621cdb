package reconcile

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/spec"
)

func TestRuntimeName(t *testing.T) {
	for _, tt := range []struct{ set, name, want string }{
		{"alpha", "web", "alpha.web"},
		{"my.project", "web", "my-project.web"},
		{"weird set/name", "db", "weird-set-name.db"},
		{strings.Repeat("s", 70), "web", strings.Repeat("s", 60) + ".web"},
	} {
		got := RuntimeName(tt.set, tt.name)
		assert.Equal(t, tt.want, got)
		assert.LessOrEqual(t, len(got), 64)
		assert.Equal(t, tt.name, specName(got))
	}
}

// TestInit: the typed PID 1 of a long-lived container (lxcrt's
// TestRender goldens init-command and init-boot show how LXC gets it).
func TestInit(t *testing.T) {
	i := Init(spec.Container{Name: "web", Command: []string{"nginx"}, Env: map[string]string{"B": "2", "A": "1"}}, "/r/logs/p.web.log")
	assert.Equal(t, container.Init{Kind: container.InitCommand, Command: []string{"nginx"}, Env: []string{"A=1", "B=2"},
		ConsoleLog: "/r/logs/p.web.log"}, i)
	i = Init(spec.Container{Name: "box"}, "/l")
	assert.Equal(t, container.InitBoot, i.Kind, "the image's init must be PID 1 itself")
}
