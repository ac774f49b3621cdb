package stintnet

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoadCorrupt: every state file in testdata/state named corrupt-* is
// refused with a *CorruptStateError naming the file; ok-* ones load.
func TestLoadCorrupt(t *testing.T) {
	files, err := filepath.Glob("testdata/state/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			s := store{dir: t.TempDir()}
			require.NoError(t, os.WriteFile(s.path(), b, 0o644))
			st, err := s.load()
			if strings.HasPrefix(name, "ok-") {
				require.NoError(t, err)
				assert.NotNil(t, st.Bridges)
				assert.NotNil(t, st.Leases)
				return
			}
			var corrupt *CorruptStateError
			require.True(t, errors.As(err, &corrupt), "want a *CorruptStateError, got %v", err)
			assert.Equal(t, s.path(), corrupt.Path)
			assert.Contains(t, err.Error(), "network state "+s.path()+" is corrupt: ")
		})
	}
}

// TestReservationHoldsAddress: the allocator never hands out a reserved
// address, refuses it as a fixed one naming the reservation, and gives it
// back to the container the reservation may be (by veth or by name).
func TestReservationHoldsAddress(t *testing.T) {
	b := &Bridge{Name: "stint0", Subnet: "10.88.0.0/30", Gateway: "10.88.0.1"}
	st := newState()
	st.Bridges[b.Name] = b
	st.Reserved = []*Reservation{{Bridge: "stint0", IPv4: "10.88.0.2", HostVeth: VethName("ghost"), Reason: "test"}}
	_, err := allocate(st, b, "other", "")
	require.ErrorIs(t, err, ErrPoolExhausted, "the only free address is reserved")
	_, err = allocate(st, b, "other", "10.88.0.2")
	require.ErrorIs(t, err, ErrAddressInUse)
	assert.Contains(t, err.Error(), "10.88.0.2 is taken by 10.88.0.2 on bridge stint0 reserved for an unknown container (veth "+VethName("ghost")+")")
	a, err := allocate(st, b, "ghost", "")
	require.NoError(t, err)
	assert.Equal(t, "10.88.0.2", a.String())
	assert.Equal(t, "10.88.0.2", reservedAddress(st, "ghost", "stint0"))

	st.Reserved = append(st.Reserved, &Reservation{Bridge: "stint0", IPv4: "10.88.0.2", Names: []string{"web", "stint-p-web"}})
	assert.Len(t, dropReservations(st, "stint-p-web"), 1)
	assert.Len(t, dropReservations(st, "ghost"), 1)
	assert.Empty(t, st.Reserved)
}
