// Package idmap finds the subordinate id range that stint's unprivileged
// containers run in: root's entries in /etc/subuid and /etc/subgid.
//
// A golden volume is shifted into this range once (storage), and every
// unprivileged container is configured with the same lxc.idmap (runner), so a
// clone is usable at once without a per-job chown.
package idmap

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Map is a container's user-namespace mapping: container ids 0..Size-1 map
// to host ids HostUID.. and HostGID...
type Map struct {
	HostUID uint32 `json:"host_uid"`
	HostGID uint32 `json:"host_gid"`
	Size    uint32 `json:"size"`
}

// Default is the range stint adds when root has none: LXC's and Docker's usual.
var Default = Map{HostUID: 100000, HostGID: 100000, Size: 65536}

// ErrNoRange means the file has no usable entry for the user.
var ErrNoRange = errors.New("no subordinate id range")

// ShiftUID maps a container uid to the host; ids outside the map are returned
// unchanged with ok=false.
func (m Map) ShiftUID(id uint32) (uint32, bool) {
	if id >= m.Size {
		return id, false
	}
	return m.HostUID + id, true
}

// ShiftGID maps a container gid to the host, as ShiftUID.
func (m Map) ShiftGID(id uint32) (uint32, bool) {
	if id >= m.Size {
		return id, false
	}
	return m.HostGID + id, true
}

// LXC renders the map as lxc.idmap values.
func (m Map) LXC() []string {
	return []string{
		fmt.Sprintf("u 0 %d %d", m.HostUID, m.Size),
		fmt.Sprintf("g 0 %d %d", m.HostGID, m.Size),
	}
}

// Key names the map in volume ids ("100000-165535"), so goldens shifted
// differently never share a name.
func (m Map) Key() string {
	return fmt.Sprintf("%d-%d-%d", m.HostUID, m.HostGID, m.Size)
}

// Load reads root's ranges from subuid and subgid (normally /etc/subuid and
// /etc/subgid). The first range of at least 65536 ids is used for each.
func Load(subuid, subgid string) (Map, error) {
	u, us, err := first(subuid)
	if err != nil {
		return Map{}, err
	}
	g, gs, err := first(subgid)
	if err != nil {
		return Map{}, err
	}
	return Map{HostUID: u, HostGID: g, Size: min(us, gs)}, nil
}

// Ensure loads root's ranges, adding Default to both files when either has
// none, as `usermod --add-subuids` would.
func Ensure(subuid, subgid string) (Map, error) {
	m, err := Load(subuid, subgid)
	if err == nil {
		return m, nil
	}
	if !errors.Is(err, ErrNoRange) && !errors.Is(err, os.ErrNotExist) {
		return Map{}, err
	}
	line := fmt.Sprintf("root:%d:%d", Default.HostUID, Default.Size)
	for _, f := range []string{subuid, subgid} {
		if _, _, err := first(f); err == nil {
			continue
		}
		if err := appendLine(f, line); err != nil {
			return Map{}, fmt.Errorf("add root's range: %w", err)
		}
	}
	return Load(subuid, subgid)
}

func first(path string) (start, size uint32, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(fields) != 3 || (fields[0] != "root" && fields[0] != "0") {
			continue
		}
		s, err1 := strconv.ParseUint(fields[1], 10, 32)
		n, err2 := strconv.ParseUint(fields[2], 10, 32)
		if err1 != nil || err2 != nil || n < 65536 {
			continue
		}
		return uint32(s), uint32(n), nil
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", path, err)
	}
	return 0, 0, fmt.Errorf("%s: root: %w of at least 65536 ids", path, ErrNoRange)
}
