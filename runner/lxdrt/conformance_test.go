package lxdrt_test

import (
	"testing"

	"github.com/stintdev/stint/internal/lxdenv"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/container/containertest"
	"github.com/stintdev/stint/runner/lxdrt"
)

// TestConformance runs the runtime contract's suite on a private LXD.
func TestConformance(t *testing.T) {
	d := lxdenv.StartDaemon(t)
	rt := runtime(t, connect(t, d), lxdrt.Options{})
	containertest.Suite(t, func(t *testing.T) containertest.Harness {
		return containertest.Harness{Runtime: rt, Config: func(t *testing.T) container.Config {
			return container.Config{Root: container.Root{Image: busybox(t)}}
		}}
	})
}
