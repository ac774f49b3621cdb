package reconcile

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stintdev/stint/internal/testenv"
)

// reconcile is pure: the plan, apply, watch and the Backend contract; its
// backend lives in runner. It reaches no runtime, storage or network, not
// even indirectly.
func TestReconcileIsPure(t *testing.T) {
	assert.Equal(t, []string{"spec"}, testenv.OurDeps(t))
}
