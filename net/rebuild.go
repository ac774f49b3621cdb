package stintnet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
)

// rebuild reconstructs the network state kept in dir from the kernel (the
// calling thread's network namespace) and the files beside the state. It
// returns notes on what it could not rebuild in full.
//
//   - Bridges: links marked as stint's (bridgeAlias) whose hosts file is in
//     dir: several state directories may share a kernel (tests, a second
//     stint with $STINT_NET_STATE), and each keeps its own bridges. Subnet
//     and gateway come from the bridge's address. A bridge whose link is
//     gone while its rules and files remain is taken from its masquerade
//     rule, so that Prune removes it.
//   - Leases: every "vst…" veth on such a bridge is a container's. Its
//     name is one whose VethName is the veth's: from the hosts file, the
//     port rules' comments, or the LXC monitor and cgroup of the processes
//     in the veth peer's network namespace. Its address comes from that
//     namespace, the hosts file or its port forwards, its ports from its
//     rules, its root from the monitor's LXC path. A container with port
//     rules but no veth (stopped) gets its lease from the rules.
//   - Reservations: an address in use whose container is not known for
//     sure (a veth without a name, a hosts entry without a veth) is
//     reserved rather than handed out twice.
func rebuild(dir string) (*State, []string, error) {
	st := newState()
	links, err := netlink.LinkList()
	if err != nil {
		return nil, nil, fmt.Errorf("list links: %w", err)
	}
	fw, err := newFirewall()
	if err != nil {
		return nil, nil, err
	}
	notes := rebuildBridges(st, dir, links)
	if err := rebuildFromRules(st, dir, fw); err != nil {
		return nil, nil, err
	}
	ev, err := gatherEvidence(st, dir, fw)
	if err != nil {
		return nil, nil, err
	}
	notes = append(notes, ev.rebuildLeases(st, links)...)
	return st, notes, nil
}

// rebuildBridges adds the managed bridges of dir found among links.
func rebuildBridges(st *State, dir string, links []netlink.Link) []string {
	var notes []string
	for _, l := range links {
		if _, ok := l.(*netlink.Bridge); !ok || l.Attrs().Alias != bridgeAlias {
			continue
		}
		name := l.Attrs().Name
		if _, err := os.Stat(filepath.Join(dir, name, "hosts")); err != nil {
			notes = append(notes, fmt.Sprintf("bridge %s is stint's but has no hosts file in %s: left to the state directory that has it", name, dir))
			continue
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if err != nil || len(addrs) == 0 || addrs[0].IPNet == nil {
			notes = append(notes, fmt.Sprintf("bridge %s has no IPv4 address: left out, it gets one on next use", name))
			continue
		}
		gw, ok := netip.AddrFromSlice(addrs[0].IPNet.IP.To4())
		subnet, ok2 := prefixOf(addrs[0].IPNet)
		if !ok || !ok2 {
			continue
		}
		st.Bridges[name] = &Bridge{Name: name, Subnet: subnet.String(), Gateway: gw.String()}
	}
	return notes
}

// rebuildFromRules adds the bridges of dir that have rules and files but no
// link any more: their masquerade rule names the subnet.
func rebuildFromRules(st *State, dir string, fw *firewall) error {
	subnets, err := fw.bridgeSubnets()
	if err != nil {
		return err
	}
	for name, p := range subnets {
		if _, ok := st.Bridges[name]; ok || !bridgeNameRE.MatchString(name) {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			continue // another state directory's
		}
		st.Bridges[name] = &Bridge{Name: name, Subnet: p.String(), Gateway: p.Addr().Next().String()}
	}
	return nil
}

// hostsEntry is one container line of a bridge's hosts file.
type hostsEntry struct {
	addr  netip.Addr
	names []string // hostname first, then the container's name if it differs
	used  bool     // taken by a rebuilt lease
}

// evidence is what the kernel and the files say about the containers.
type evidence struct {
	dir   string
	hosts map[string][]*hostsEntry // by bridge
	ports map[string][]forward     // by container, forwards into dir's subnets
	peers *peerFinder
}

func gatherEvidence(st *State, dir string, fw *firewall) (*evidence, error) {
	ev := &evidence{dir: dir, hosts: map[string][]*hostsEntry{}, ports: map[string][]forward{}, peers: &peerFinder{}}
	var subnets []netip.Prefix
	for name, b := range st.Bridges {
		subnet := netip.MustParsePrefix(b.Subnet)
		subnets = append(subnets, subnet)
		entries, err := readHosts(filepath.Join(dir, name, "hosts"), subnet, b.Gateway)
		if err != nil {
			return nil, err
		}
		ev.hosts[name] = entries
	}
	fwd, err := fw.portForwards()
	if err != nil {
		return nil, err
	}
	for c, list := range fwd {
		for _, f := range list {
			if slices.ContainsFunc(subnets, func(p netip.Prefix) bool { return p.Contains(f.addr) }) {
				ev.ports[c] = append(ev.ports[c], f)
			}
		}
	}
	return ev, nil
}

// readHosts parses the container lines of a hosts file written by
// renderHosts: addresses in subnet other than the gateway.
func readHosts(path string, subnet netip.Prefix, gateway string) ([]*hostsEntry, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read hosts file: %w", err)
	}
	var out []*hostsEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil || !subnet.Contains(a) || f[0] == gateway {
			continue
		}
		out = append(out, &hostsEntry{addr: a, names: f[1:]})
	}
	return out, nil
}

// rebuildLeases turns the veths on st's bridges, then the port rules and
// hosts entries no veth claimed, into leases and reservations.
func (ev *evidence) rebuildLeases(st *State, links []netlink.Link) []string {
	var notes []string
	byIndex := map[int]*Bridge{}
	for _, l := range links {
		if b, ok := st.Bridges[l.Attrs().Name]; ok {
			byIndex[l.Attrs().Index] = b
		}
	}
	for _, l := range links {
		b, ok := byIndex[l.Attrs().MasterIndex]
		if _, veth := l.(*netlink.Veth); !ok || !veth || !vethRE.MatchString(l.Attrs().Name) {
			continue
		}
		lease, res := ev.fromVeth(b, l)
		if lease != nil {
			notes = append(notes, addLease(st, lease)...)
		}
		if res != nil {
			st.Reserved = append(st.Reserved, res)
			notes = append(notes, res.String())
		}
	}
	for _, c := range sortedKeys(ev.ports) {
		if _, ok := st.Leases[c]; ok {
			continue
		}
		if lease := ev.fromPorts(st, c); lease != nil {
			notes = append(notes, addLease(st, lease)...)
		}
	}
	for _, name := range sortedKeys(ev.hosts) {
		for _, e := range ev.hosts[name] {
			if e.used || addressTaken(st, name, e.addr.String()) {
				continue
			}
			r := &Reservation{Bridge: name, IPv4: e.addr.String(), Names: e.names,
				Reason: "in the hosts file, with no veth on the bridge (a stopped container, or one that is gone)"}
			st.Reserved = append(st.Reserved, r)
			notes = append(notes, r.String())
		}
	}
	return notes
}

// addLease adds l unless another rebuilt lease has its address.
func addLease(st *State, l *Lease) []string {
	if addressTaken(st, l.Bridge, l.IPv4) {
		return []string{fmt.Sprintf("container %s: address %s on bridge %s is claimed twice; left to the first", l.Container, l.IPv4, l.Bridge)}
	}
	st.Leases[l.Container] = l
	return nil
}

func addressTaken(st *State, bridge, addr string) bool {
	for _, l := range st.Leases {
		if l.Bridge == bridge && l.IPv4 == addr {
			return true
		}
	}
	for _, r := range st.Reserved {
		if r.Bridge == bridge && r.IPv4 == addr && addr != "" {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
