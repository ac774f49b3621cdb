package stintnet

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// peerInfo is what the network namespace at the other end of a container's
// veth tells: the container's address, and names that may be its own.
type peerInfo struct {
	addr  netip.Addr
	names []procName
}

// procName is a container name a process vouches for, with the stint root
// its LXC path is in ("" when unknown).
type procName struct {
	name, root string
}

// peerFinder maps the kernel's ids of other network namespaces (a veth's
// link-netnsid) to the processes in them, scanning /proc once, on first use.
type peerFinder struct {
	scanned bool
	byID    map[int]*netnsProcs
}

type netnsProcs struct {
	path string // /proc/<pid>/ns/net of one of them
	pids []int
}

// peer looks into the namespace of veth link's peer: its address in subnet
// and the names of the LXC container whose processes live there. A
// namespace without a process (or one this thread cannot see) tells nothing.
func (p *peerFinder) peer(link netlink.Link, subnet netip.Prefix) peerInfo {
	nsid := link.Attrs().NetNsID
	if nsid < 0 {
		return peerInfo{}
	}
	if !p.scanned {
		p.byID = scanNetns()
		p.scanned = true
	}
	ns, ok := p.byID[nsid]
	if !ok {
		return peerInfo{}
	}
	info := peerInfo{addr: peerAddr(ns.path, link.Attrs().ParentIndex, subnet)}
	for _, pid := range ns.pids {
		if n, ok := containerOf(pid); ok {
			info.names = append(info.names, n)
		}
	}
	return info
}

// scanNetns groups the processes by network namespace and asks the kernel
// for each namespace's id as this thread's namespace knows it.
func scanNetns() map[int]*netnsProcs {
	self, _ := os.Readlink("/proc/thread-self/ns/net")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	byIno := map[string]*netnsProcs{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		path := filepath.Join("/proc", e.Name(), "ns/net")
		ino, err := os.Readlink(path)
		if err != nil || ino == self {
			continue
		}
		if byIno[ino] == nil {
			byIno[ino] = &netnsProcs{path: path}
		}
		byIno[ino].pids = append(byIno[ino].pids, pid)
	}
	out := map[int]*netnsProcs{}
	for _, ns := range byIno {
		f, err := os.Open(ns.path)
		if err != nil {
			continue
		}
		id, err := netlink.GetNetNsIdByFd(int(f.Fd()))
		f.Close()
		if err == nil && id >= 0 {
			out[id] = ns
		}
	}
	return out
}

// peerAddr is the IPv4 address in subnet of link index in the namespace at
// path (invalid when there is none).
func peerAddr(path string, index int, subnet netip.Prefix) netip.Addr {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return netip.Addr{}
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return netip.Addr{}
	}
	defer h.Close()
	link, err := h.LinkByIndex(index)
	if err != nil {
		return netip.Addr{}
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && subnet.Contains(ip) {
			return ip
		}
	}
	return netip.Addr{}
}

// monitorPrefix starts the process title LXC gives a container's monitor:
// "[lxc monitor] <lxcpath> <name>". The monitor is the parent of the
// container's init.
const monitorPrefix = "[lxc monitor] "

// containerOf names the LXC container process pid belongs to: from its
// parent's title (the monitor, which also gives the LXC path, and so the
// stint root, <root>/containers), or from its lxc.payload.<name> cgroup.
func containerOf(pid int) (procName, bool) {
	if ppid, ok := parentOf(pid); ok {
		title, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(ppid), "cmdline"))
		if err == nil {
			title, _, _ = bytes.Cut(title, []byte{0})
			if rest, ok := strings.CutPrefix(string(title), monitorPrefix); ok {
				if i := strings.LastIndexByte(rest, ' '); i > 0 {
					lxcpath, name := rest[:i], rest[i+1:]
					root := ""
					if filepath.Base(lxcpath) == "containers" {
						root = filepath.Dir(lxcpath)
					}
					return procName{name: name, root: root}, true
				}
			}
		}
	}
	cg, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return procName{}, false
	}
	if name := payloadName(cg); name != "" {
		return procName{name: name}, true
	}
	return procName{}, false
}

// payloadName is the container named by an lxc.payload.<name> cgroup in a
// /proc/<pid>/cgroup file ("" when there is none).
func payloadName(cgroupFile []byte) string {
	for _, line := range strings.Split(string(cgroupFile), "\n") {
		_, path, ok := strings.Cut(line, ":/") // id:controllers:/path
		if !ok {
			continue
		}
		for _, part := range strings.Split(path, "/") {
			if name, ok := strings.CutPrefix(part, "lxc.payload."); ok && name != "" {
				return name
			}
		}
	}
	return ""
}

// parentOf reads pid's parent from /proc/<pid>/stat (after the command's
// closing parenthesis, which may itself contain spaces).
func parentOf(pid int) (int, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}
