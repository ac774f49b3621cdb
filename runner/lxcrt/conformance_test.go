package lxcrt_test

import (
	"testing"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/container/containertest"
)

// TestConformance runs the container contract's suite on real LXC, with an
// unprivileged busybox root (the fixture gates on root and liblxc: a skip in
// a plain go test, a failure under STINT_INTEGRATION=1).
func TestConformance(t *testing.T) {
	containertest.Suite(t, func(t *testing.T) containertest.Harness {
		f := newFixture(t, false)
		return containertest.Harness{
			Runtime: f.rt,
			Config: func(*testing.T) container.Config {
				return container.Config{Root: container.Root{Dir: f.rootfs}, IDMap: f.idmap}
			},
		}
	})
}
