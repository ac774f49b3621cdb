package container

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stintdev/stint/internal/testenv"
)

// The contract is types and prose: nothing of stint's (a runtime imports
// it and nothing of the engine, DESIGN.md).
func TestContractImportsNothingOfOurs(t *testing.T) {
	assert.Empty(t, testenv.OurDeps(t))
}
