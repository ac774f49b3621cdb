package direngine

import (
	"path/filepath"
	"testing"

	"github.com/stintdev/stint/gitlab"
	"github.com/stintdev/stint/gitlab/enginetest"
)

func TestConformance(t *testing.T) {
	enginetest.Suite(t, func(t *testing.T) (gitlab.Engine, gitlab.JobContainer) {
		dir := t.TempDir()
		return &Engine{Root: dir}, gitlab.JobContainer{Image: "busybox", BuildsDir: filepath.Join(dir, "builds"), CacheDir: "/cache"}
	})
}
