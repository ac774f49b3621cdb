package lxcrt

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stintdev/stint/internal/testenv"
)

// A runtime imports the container contract and internal helpers, never
// the job engine (runner) or what it wires (spec, storage, net, images).
func TestRuntimeImportsOnlyTheContract(t *testing.T) {
	for _, p := range testenv.OurDeps(t) {
		assert.True(t, p == "runner/container" || strings.HasPrefix(p, "internal/"), "lxcrt depends on %s", p)
	}
}
