package reconcile

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRuntimeName(t *testing.T) {
	for _, tt := range []struct{ set, name, want string }{
		{"alpha", "web", "alpha.web"},
		{"my.project", "web", "my-project.web"},
		{"weird set/name", "db", "weird-set-name.db"},
		{strings.Repeat("s", 70), "web", strings.Repeat("s", 60) + ".web"},
	} {
		got := RuntimeName(tt.set, tt.name)
		assert.Equal(t, tt.want, got)
		assert.LessOrEqual(t, len(got), 64)
		assert.Equal(t, tt.name, SpecName(got))
	}
}
