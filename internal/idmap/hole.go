package idmap

// An id map with a hole: one user's uid and gid go through the container's
// user namespace unchanged (container id N is host id N), every other id
// lands in root's subordinate range as in Map. This is how a developer's
// files stay theirs on both sides of a read-write bind (`host_user = true`):
// a file they own on the host is owned by the same uid inside, and a file
// made inside by that uid is theirs on the host.
//
// Why a hole and not idmapped bind mounts (mount_setattr MOUNT_ATTR_IDMAP,
// probed by IdmappedMounts): the hole works on every filesystem a project
// or a home lives on (NFS, FUSE and older kernels have no idmapped mounts),
// it covers every path the user shares with the container at once (the
// project, an SSH agent's socket, a home volume) with one line of LXC
// config, and it needs no helper process holding a user namespace while
// the container starts. Its cost, written down in docs/devenv.md: the
// container's root can become that uid (it holds CAP_SETUID in its
// namespace), so whatever the spec binds in that the user may write, the
// container may write. That is the developer's own box, on their own
// files; nothing else of theirs is reachable unless a spec mounts it.
//
// Who may map the ids: the kernel lets a writer of uid_map holding
// CAP_SETUID over the parent namespace (root) map any host id. liblxc,
// though, goes through newuidmap/newgidmap whenever they are on its PATH,
// even as root, and those allow only what /etc/subuid and /etc/subgid
// grant root ("newuidmap: uid range [4242-4243) -> [4242-4243) not
// allowed"). stint's LXC runtime hides them from liblxc (runner/lxcrt,
// hideShadowTools) unless a config runs hooks; Reserve adds root:N:1 to
// both files, as LXD's documentation asks for raw.idmap, so the map works
// either way and shadow's registry of who maps what stays true.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Range is one contiguous run of a user namespace's ids: container ids
// Inside..Inside+Count-1 are host ids Host..Host+Count-1. It is one
// lxc.idmap line, one line of /proc/PID/uid_map.
type Range struct {
	Inside uint32 `json:"inside"`
	Host   uint32 `json:"host"`
	Count  uint32 `json:"count"`
}

// Holed is a Map with a hole: container uid UID is host uid UID, container
// gid GID is host gid GID, and every other container id below Size is
// shifted by the Map as before. Make one with Map.WithHole, which checks
// the ids.
type Holed struct {
	Map
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
}

// ErrBadHole means an id cannot go through a container's map unchanged.
var ErrBadHole = errors.New("id can't be mapped 1:1 into a container")

// HoleError says which id was refused and why. It wraps ErrBadHole.
type HoleError struct {
	Kind string // "uid" or "gid"
	ID   uint32
	Why  string
}

func (e *HoleError) Error() string {
	return fmt.Sprintf("host %s %d: %s: %s", e.Kind, e.ID, ErrBadHole, e.Why)
}

// Unwrap returns ErrBadHole.
func (e *HoleError) Unwrap() error { return ErrBadHole }

// overflowID is the kernel's overflowuid/overflowgid: what an unmapped id
// reads as ("nobody"). Mapping it would make every unmapped file look like
// the user's.
const overflowID = 65534

// WithHole returns m with host uid and gid mapped 1:1. It refuses host
// root (0), the overflow id (65534), the invalid id (2^32-1) and an id
// inside m's own host range (the kernel refuses overlapping ranges, and it
// would give the user's identity to some other container id).
func (m Map) WithHole(uid, gid uint32) (Holed, error) {
	if m.Size == 0 {
		return Holed{}, fmt.Errorf("id map with a hole: %w: empty map", ErrNoRange)
	}
	for _, c := range []struct {
		kind       string
		id, hostLo uint32
	}{{"uid", uid, m.HostUID}, {"gid", gid, m.HostGID}} {
		if why := holeProblem(c.id, c.hostLo, m.Size); why != "" {
			return Holed{}, &HoleError{Kind: c.kind, ID: c.id, Why: why}
		}
	}
	return Holed{Map: m, UID: uid, GID: gid}, nil
}

// holeProblem says why id can't be a hole in a map of size ids from hostLo,
// or "".
func holeProblem(id, hostLo, size uint32) string {
	switch {
	case id == 0:
		return "host root is never mapped into a container"
	case id == overflowID:
		return "the overflow id (nobody) is what every unmapped id reads as"
	case id == ^uint32(0):
		return "not a valid id"
	case uint64(id) >= uint64(hostLo) && uint64(id) < uint64(hostLo)+uint64(size):
		return fmt.Sprintf("inside the subordinate range %d-%d that the container's other ids use",
			hostLo, uint64(hostLo)+uint64(size)-1)
	}
	return ""
}

// UIDRanges is the uid map, sorted by container id.
func (h Holed) UIDRanges() []Range { return holeRanges(h.HostUID, h.Size, h.UID) }

// GIDRanges is the gid map, sorted by container id.
func (h Holed) GIDRanges() []Range { return holeRanges(h.HostGID, h.Size, h.GID) }

// holeRanges splits 0..size-1 → hostLo.. around id → id. An id at or past
// size is added after the shifted range (the container's ids past size
// are otherwise unmapped).
func holeRanges(hostLo, size, id uint32) []Range {
	if id >= size {
		return []Range{{0, hostLo, size}, {id, id, 1}}
	}
	out := []Range{{0, hostLo, id}, {id, id, 1}}
	if rest := size - id - 1; rest > 0 {
		out = append(out, Range{id + 1, hostLo + id + 1, rest})
	}
	return out
}

// LXC renders the map as lxc.idmap values: the uid ranges, then the gid
// ranges, each "u|g INSIDE HOST COUNT".
func (h Holed) LXC() []string {
	var out []string
	for _, r := range h.UIDRanges() {
		out = append(out, fmt.Sprintf("u %d %d %d", r.Inside, r.Host, r.Count))
	}
	for _, r := range h.GIDRanges() {
		out = append(out, fmt.Sprintf("g %d %d %d", r.Inside, r.Host, r.Count))
	}
	return out
}

// ShiftUID maps a container uid to the host: the hole unchanged, others as
// Map.ShiftUID. ok is false for an id the map doesn't hold.
func (h Holed) ShiftUID(id uint32) (uint32, bool) { return shift(h.UIDRanges(), id) }

// ShiftGID maps a container gid to the host, as ShiftUID.
func (h Holed) ShiftGID(id uint32) (uint32, bool) { return shift(h.GIDRanges(), id) }

func shift(rs []Range, id uint32) (uint32, bool) {
	for _, r := range rs {
		if id >= r.Inside && uint64(id) < uint64(r.Inside)+uint64(r.Count) {
			return r.Host + (id - r.Inside), true
		}
	}
	return id, false
}

// Reserve records root's right to map host uid and gid 1:1 in subuid and
// subgid (normally /etc/subuid and /etc/subgid): it appends "root:ID:1" to
// each file unless one of root's entries there already covers the id.
// Idempotent. newuidmap and newgidmap, which liblxc uses when they are on
// its PATH, refuse a map that these files don't allow; and shadow's tools
// then know that root maps these ids. The range Load picks is unaffected
// (it wants 65536 ids or more).
func Reserve(subuid, subgid string, uid, gid uint32) error {
	for _, c := range []struct {
		file string
		id   uint32
	}{{subuid, uid}, {subgid, gid}} {
		ok, err := rootCovers(c.file, c.id)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		if err := appendLine(c.file, fmt.Sprintf("root:%d:1", c.id)); err != nil {
			return fmt.Errorf("reserve id %d for root: %w", c.id, err)
		}
	}
	return nil
}

// rootCovers reports whether one of root's entries in file holds id. A
// missing file holds nothing.
func rootCovers(file string, id uint32) (bool, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", file, err)
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
		if err1 == nil && err2 == nil && uint64(id) >= s && uint64(id) < s+n {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read %s: %w", file, err)
	}
	return false, nil
}

// appendLine appends line to file (made 0644 if missing), after a newline
// if the file doesn't end in one: a last line without its newline must not
// run into ours.
func appendLine(file, line string) error {
	fh, err := os.OpenFile(file, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("append to %s: %w", file, err)
	}
	if fi, err := fh.Stat(); err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err := fh.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			line = "\n" + line
		}
	}
	_, werr := fh.WriteString(line + "\n")
	if cerr := fh.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("append to %s: %w", file, werr)
	}
	return nil
}
