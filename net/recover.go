package stintnet

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/stintdev/stint/internal/plural"
)

// Reservation is an address a live (or stopped) container uses whose lease
// was lost with a corrupt state and could not be rebuilt in full: its name
// or its address is all the kernel and the files still tell. The allocator
// never hands a reserved address out. Release of the container (a name in
// Names, or the container whose veth is HostVeth) drops the reservation, a
// new lease of that container takes its address back, and Prune drops it
// once its HostVeth is gone from the kernel.
type Reservation struct {
	Bridge string `json:"bridge"`
	// IPv4 is the reserved address; empty when only the veth was seen.
	IPv4 string `json:"ipv4,omitempty"`
	// HostVeth is the host side of the container's veth, when one was on
	// the bridge (a running container).
	HostVeth string `json:"host_veth,omitempty"`
	// Names are the names that may be the container's (the hosts file's).
	Names []string `json:"names,omitempty"`
	// Reason says why only a reservation could be rebuilt.
	Reason string `json:"reason"`
}

// of reports whether r may be container's.
func (r *Reservation) of(container string) bool {
	return r.HostVeth != "" && r.HostVeth == VethName(container) || slices.Contains(r.Names, container)
}

// String describes the reservation for error messages and the recovery
// report.
func (r *Reservation) String() string {
	var who []string
	if r.HostVeth != "" {
		who = append(who, "veth "+r.HostVeth)
	}
	if len(r.Names) > 0 {
		who = append(who, "name "+strings.Join(r.Names, "/"))
	}
	addr := r.IPv4
	if addr == "" {
		addr = "an unknown address"
	}
	return fmt.Sprintf("%s on bridge %s reserved for an unknown container (%s): %s", addr, r.Bridge, strings.Join(who, ", "), r.Reason)
}

// dropReservations removes container's reservations and returns them.
func dropReservations(st *State, container string) []*Reservation {
	var gone []*Reservation
	st.Reserved = slices.DeleteFunc(st.Reserved, func(r *Reservation) bool {
		if r.of(container) {
			gone = append(gone, r)
			return true
		}
		return false
	})
	return gone
}

// hasReservation reports whether an address may be reserved for container.
func hasReservation(st *State, container string) bool {
	return slices.ContainsFunc(st.Reserved, func(r *Reservation) bool { return r.of(container) })
}

// reservedAddress is the address reserved for container on bridge, if any:
// a stopped container attached again gets the address it had.
func reservedAddress(st *State, container, bridge string) string {
	for _, r := range st.Reserved {
		if r.Bridge == bridge && r.IPv4 != "" && r.of(container) {
			return r.IPv4
		}
	}
	return ""
}

// SetWarnings sends the Manager's warnings (a corrupt state moved aside and
// rebuilt) to w instead of os.Stderr. Call it before the Manager is used.
func (m *Manager) SetWarnings(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.warn = w
}

// recoverCorrupt is what the store does with a corrupt state file, under the
// exclusive lock: rebuild the state from the kernel, keep the bad file for
// inspection beside it (state.json.corrupt-<UTC time>), save the rebuilt
// state over it and say so. A crash midway leaves the corrupt file in place,
// to be recovered again.
func (s *store) recoverCorrupt(corrupt *CorruptStateError) (*State, error) {
	st, notes, err := rebuild(s.dir)
	if err != nil {
		return nil, fmt.Errorf("%w; rebuild it from the kernel: %w", corrupt, err)
	}
	aside, err := s.keepAside()
	if err != nil {
		return nil, fmt.Errorf("%w; %w", corrupt, err)
	}
	if err := s.save(st); err != nil {
		return nil, fmt.Errorf("%w; %w", corrupt, err)
	}
	w := s.warn
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintf(w, "stint: warning: %v; moved it aside to %s and rebuilt it from the kernel: %s, %s, %s\n",
		corrupt, aside, plural.N(len(st.Bridges), "bridge", "bridges"), plural.N(len(st.Leases), "lease", "leases"),
		plural.N(len(st.Reserved), "reserved address", "reserved addresses"))
	for _, n := range notes {
		fmt.Fprintf(w, "stint: warning:   %s\n", n)
	}
	return st, nil
}

// keepAside hard-links the state file to a new name beside it, so that the
// atomic save of the rebuilt state replaces only the original name.
func (s *store) keepAside() (string, error) {
	base := s.path() + ".corrupt-" + time.Now().UTC().Format("20060102T150405Z")
	name := base
	for i := 1; ; i++ {
		err := os.Link(s.path(), name)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, os.ErrExist) || i > 100 {
			return "", fmt.Errorf("keep corrupt network state as %s: %w", name, err)
		}
		name = fmt.Sprintf("%s.%d", base, i)
	}
}

// dropGoneReservations drops the reservations of running containers whose
// veth is gone: the container stopped, and its address with it.
func dropGoneReservations(st *State) error {
	var err error
	st.Reserved = slices.DeleteFunc(st.Reserved, func(r *Reservation) bool {
		if r.HostVeth == "" || err != nil {
			return false
		}
		_, lerr := netlink.LinkByName(r.HostVeth)
		var notFound netlink.LinkNotFoundError
		if errors.As(lerr, &notFound) {
			return true
		}
		if lerr != nil {
			err = fmt.Errorf("reservation of %s: %w", r.HostVeth, lerr)
		}
		return false
	})
	return err
}
