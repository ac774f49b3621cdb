package stintnet

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/stintdev/stint/internal/lazyre"
)

// VethName is the host-side veth name of container's interface: "vst" and
// 12 hex digits of a hash of the name (15 bytes, the kernel's limit). It is
// derived from the name alone so that teardown after a kill -9 finds it.
func VethName(container string) string {
	sum := sha256.Sum256([]byte(container))
	return "vst" + hex.EncodeToString(sum[:6])
}

var hostnameRE = lazyre.New(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// validHostname reports whether s may appear in a hosts file.
func validHostname(s string) bool { return len(s) <= 253 && hostnameRE.MatchString(s) }

// names returns the names a lease answers to in the hosts file: its hostname
// and its container name, those that are valid host names.
func (l *Lease) names() []string {
	var out []string
	for _, n := range []string{l.Hostname, l.Container} {
		if n != "" && validHostname(n) && !contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// renderHosts is the /etc/hosts every container on bridge b sees: loopback,
// the gateway (the host, as "gateway" and "host.stint.internal"), and every
// container on the bridge, sorted by address.
func renderHosts(st *State, b *Bridge) []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# written by stint for bridge %s; do not edit\n", b.Name)
	sb.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	fmt.Fprintf(&sb, "%s\tgateway host.stint.internal\n", b.Gateway)
	type entry struct {
		addr  netip.Addr
		names []string
	}
	var entries []entry
	for _, l := range st.Leases {
		if l.Bridge != b.Name || l.IPv4 == "" {
			continue
		}
		a, err := netip.ParseAddr(l.IPv4)
		if err != nil {
			continue
		}
		if n := l.names(); len(n) > 0 {
			entries = append(entries, entry{a, n})
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].addr.Less(entries[j].addr) })
	for _, e := range entries {
		fmt.Fprintf(&sb, "%s\t%s\n", e.addr, strings.Join(e.names, " "))
	}
	return []byte(sb.String())
}

// writeInPlace replaces path's content without replacing its inode: the file
// is bind-mounted into running containers, and a rename would leave them
// with the old file. The new content is written over the old, then the file
// cut to length, so a reader never sees an empty file.
func writeInPlace(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		f.Close()
		return fmt.Errorf("truncate %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// renderResolv is the /etc/resolv.conf of bridged containers: the host's
// IPv4 nameservers (containers have no IPv6). A local stub resolver
// (systemd-resolved's 127.0.0.53, dnsmasq on 127.0.0.1) is unreachable from
// a container's own network namespace, so it is replaced by resolved's
// upstream list, or, failing that, by the gateway, which answers only if the
// host runs a resolver on the bridge (docs/network.md says how).
func renderResolv(hostResolv, resolvedUpstream []byte, gateway string) []byte {
	var sb strings.Builder
	sb.WriteString("# written by stint from the host's resolver configuration\n")
	servers, search := parseResolv(hostResolv)
	servers = nonLoopback(servers)
	if len(servers) == 0 {
		// systemd-resolved keeps the real upstream servers here.
		servers, _ = parseResolv(resolvedUpstream)
		servers = nonLoopback(servers)
	}
	if len(servers) == 0 {
		sb.WriteString("# the host uses a loopback resolver; stint lists the gateway instead\n")
		servers = []string{gateway}
	}
	for _, s := range servers {
		fmt.Fprintf(&sb, "nameserver %s\n", s)
	}
	if search != "" {
		fmt.Fprintf(&sb, "search %s\n", search)
	}
	return []byte(sb.String())
}

// parseResolv returns the nameservers and the last search line of a
// resolv.conf.
func parseResolv(b []byte) (servers []string, search string) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			servers = append(servers, f[1])
		case "search", "domain":
			search = strings.Join(f[1:], " ")
		}
	}
	return servers, search
}

func nonLoopback(servers []string) []string {
	var out []string
	for _, s := range servers {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() || a.IsLoopback() {
			continue
		}
		out = append(out, s)
	}
	return out
}
