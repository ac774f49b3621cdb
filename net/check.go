package stintnet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/google/nftables"
	"github.com/stintdev/stint/internal/sysexec"
	"github.com/vishvananda/netlink"
)

// Warning is a host problem `stint check` reports, with how to fix it.
type Warning struct {
	Code    string `json:"code"`    // stable identifier, e.g. "forward-drop"
	Message string `json:"message"` // what is wrong
	Fix     string `json:"fix"`     // what to run or change
}

// String is the warning as `stint check` prints it.
func (w Warning) String() string { return w.Message + "; fix: " + w.Fix }

// CheckFirewall warns when the host's firewall will drop bridged containers'
// traffic: a forward base chain of another table with policy drop (iptables'
// FORWARD chain under iptables-nft, which Docker sets to DROP, or a
// hand-written nftables ruleset). An accept in stint's own table does not
// stop another table from dropping the packet. It also warns when
// forwarding is off. It looks at the calling thread's network namespace.
func CheckFirewall(ctx context.Context) []Warning {
	var out []Warning
	c, err := nftables.New()
	if err != nil {
		return []Warning{{Code: "nftables", Message: fmt.Sprintf("cannot read the nftables ruleset: %v", err), Fix: "run stint check as root"}}
	}
	chains, err := c.ListChains()
	if err != nil {
		return []Warning{{Code: "nftables", Message: fmt.Sprintf("cannot read the nftables ruleset: %v", err), Fix: "run stint check as root"}}
	}
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name == TableName && ch.Table.Family == nftables.TableFamilyIPv4 {
			continue
		}
		if ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookForward || ch.Policy == nil || *ch.Policy != nftables.ChainPolicyDrop {
			continue
		}
		if ch.Table.Family != nftables.TableFamilyIPv4 && ch.Table.Family != nftables.TableFamilyINet {
			continue
		}
		fam := familyName(ch.Table.Family)
		fix := fmt.Sprintf("allow the bridge's traffic before the drop, e.g. `nft insert rule %s %s %s iifname \"stint*\" accept` and `nft insert rule %s %s %s oifname \"stint*\" ct state established,related accept`",
			fam, ch.Table.Name, ch.Name, fam, ch.Table.Name, ch.Name)
		if ch.Table.Name == "filter" && ch.Name == "FORWARD" {
			// iptables-nft: say it in iptables terms; Docker leaves DOCKER-USER for this.
			fix = "allow the bridge's traffic: `iptables -I FORWARD -i stint0 -j ACCEPT; iptables -I FORWARD -o stint0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT` (with Docker, insert into DOCKER-USER instead), and persist it"
		}
		out = append(out, Warning{
			Code:    "forward-drop",
			Message: fmt.Sprintf("the forward chain %s %s %s has policy drop: traffic between containers on a stint bridge and the outside (and published ports%s) will be dropped unless a rule there accepts it", fam, ch.Table.Name, ch.Name, brNetfilterNote()),
			Fix:     fix,
		})
	}
	out = append(out, checkLegacyIptables(ctx)...)
	if v, err := readSysctl("net/ipv4/ip_forward"); err == nil && strings.TrimSpace(v) != "1" && managedBridgeExists() {
		out = append(out, Warning{
			Code:    "ip-forward",
			Message: "net.ipv4.ip_forward is 0 although a stint bridge exists (something reset it): bridged containers cannot reach beyond the host",
			Fix:     "sysctl -w net.ipv4.ip_forward=1 (persist it in /etc/sysctl.d/)",
		})
	}
	return out
}

// brNetfilterNote: with br_netfilter's bridge-nf-call-iptables=1, even
// traffic between two containers on one bridge passes the forward hook.
func brNetfilterNote() string {
	if v, err := readSysctl("net/bridge/bridge-nf-call-iptables"); err == nil && strings.TrimSpace(v) == "1" {
		return ", and, since bridge-nf-call-iptables=1, traffic between containers on one bridge"
	}
	return ""
}

// checkLegacyIptables reads the FORWARD policy of legacy iptables (x_tables,
// invisible to nftables) when its filter table is loaded and the tool exists.
func checkLegacyIptables(ctx context.Context) []Warning {
	names, err := os.ReadFile("/proc/net/ip_tables_names")
	if err != nil || !strings.Contains(string(names), "filter") {
		return nil
	}
	tool := ""
	for _, t := range []string{"iptables-legacy", "iptables"} {
		if _, err := exec.LookPath(t); err == nil {
			tool = t
			break
		}
	}
	if tool == "" {
		return []Warning{{Code: "iptables-legacy", Message: "legacy iptables has a filter table, but no iptables tool is installed to read its FORWARD policy", Fix: "install iptables and run stint check again"}}
	}
	out, err := sysexec.Run(ctx, tool, "-S", "FORWARD")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "-P FORWARD DROP" {
			return []Warning{{
				Code:    "forward-drop",
				Message: fmt.Sprintf("legacy iptables' FORWARD policy is DROP (Docker's default): bridged containers' traffic%s will be dropped", brNetfilterNote()),
				Fix:     tool + " -I FORWARD -i stint0 -j ACCEPT; " + tool + " -I FORWARD -o stint0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT (with Docker, use the DOCKER-USER chain), and persist it",
			}}
		}
	}
	return nil
}

// managedBridgeExists reports whether a stint bridge is on the host.
func managedBridgeExists() bool {
	links, err := netlink.LinkList()
	if err != nil {
		return false
	}
	for _, l := range links {
		if l.Attrs().Alias == bridgeAlias {
			return true
		}
	}
	return false
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyBridge:
		return "bridge"
	}
	return fmt.Sprint(uint8(f))
}
