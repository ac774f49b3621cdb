package stintnet

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stintdev/stint/internal/testenv"
)

// net/ imports none of stint's other rooms, only internal helpers
// (DESIGN.md: images, storage and net don't import each other or runner).
func TestNetImportsOnlyInternal(t *testing.T) {
	for _, p := range testenv.OurDeps(t) {
		assert.True(t, strings.HasPrefix(p, "internal/"), "net depends on %s", p)
	}
}
