package runner

import (
	"maps"
	"slices"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/spec"
)

// containerInit is long-lived container c's PID 1, with its console logged to
// consoleLog: c.Command under a reaping init, or, without a command, the
// image's own init as PID 1 (a booted distribution). Each runtime renders
// it its own way (lxcrt: a start script bind-mounted into the container).
func containerInit(c spec.Container, consoleLog string) container.Init {
	init := container.Init{Kind: container.InitBoot, ConsoleLog: consoleLog}
	if len(c.Command) > 0 {
		init.Kind, init.Command = container.InitCommand, slices.Clone(c.Command)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		init.Env = append(init.Env, k+"="+c.Env[k])
	}
	return init
}
