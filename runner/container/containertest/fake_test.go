package containertest_test

import (
	"os"
	"testing"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/container/containertest"
)

// TestFakeConformance: the fake keeps the contract it stands in for (its
// commands are host processes: the host's /bin/sh and applets).
func TestFakeConformance(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh") // every Debian host has one; not an integration gate
	}
	containertest.Suite(t, func(t *testing.T) containertest.Harness {
		return containertest.Harness{
			Runtime: containertest.NewFake(),
			Config:  func(t *testing.T) container.Config { return container.Config{Root: container.Root{Dir: "/"}} },
		}
	})
}
