package runner

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/spec"
)

// TestContainerInit: the typed PID 1 of a long-lived container (lxcrt's
// TestRender goldens init-command and init-boot show how LXC gets it).
func TestContainerInit(t *testing.T) {
	i := containerInit(spec.Container{Name: "web", Command: []string{"nginx"}, Env: map[string]string{"B": "2", "A": "1"}}, "/r/logs/p.web.log")
	assert.Equal(t, container.Init{Kind: container.InitCommand, Command: []string{"nginx"}, Env: []string{"A=1", "B=2"},
		ConsoleLog: "/r/logs/p.web.log"}, i)
	i = containerInit(spec.Container{Name: "box"}, "/l")
	assert.Equal(t, container.InitBoot, i.Kind, "the image's init must be PID 1 itself")
}
