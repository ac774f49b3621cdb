package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stintdev/stint/internal/testenv"
)

// The CLI reaches the engine through its front door (runner.Open → Host):
// it imports runner, its contract packages, spec, images and remote (the
// store of remotes that `stint remote` keeps), never what the Host wires
// (DESIGN.md).
func TestCLIImportsTheFrontDoorOnly(t *testing.T) {
	imports := testenv.OurImports(t)
	for _, p := range []string{"storage", "net", "runner/lxcrt", "internal/idmap", "internal/hostdir", "runner/state"} {
		assert.NotContains(t, imports, p)
	}
	for _, p := range imports {
		assert.Contains(t, []string{"runner", "runner/container", "runner/output", "runner/reconcile", "spec", "images", "gitlab", "remote"}, p)
	}
}
