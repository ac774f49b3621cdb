package stintnet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/stintdev/stint/internal/lazyre"
)

// A private bridge is a network of one job and its services (issue 15):
// a bridge of its own, which nothing outside it may open a connection into
// (other jobs, other bridges, the outside world; published ports excepted),
// so that only the job reaches its services, by their names in the
// bridge's hosts file. An internal private bridge (a job of network mode
// none) has no way out either: its leases have no gateway, and nothing is
// forwarded out of it or masqueraded. An outbound one (mode bridge) goes
// out through NAT like stint0.
//
// Its name says which it is and whose ("sji"/"sjo" and 12 hex digits of a
// hash of the job's container name): derived from the name alone, like a
// veth's, so that a gc after a kill -9 finds it without a record.

// PrivateBridge is the name of the private bridge of the job whose
// container is container; outbound chooses NAT (mode bridge) over none.
func PrivateBridge(container string, outbound bool) string {
	sum := sha256.Sum256([]byte(container))
	prefix := "sji"
	if outbound {
		prefix = "sjo"
	}
	return prefix + hex.EncodeToString(sum[:6])
}

var privateRE = lazyre.New(`^sj[io][0-9a-f]{12}$`)

// IsPrivateBridge reports whether name is a PrivateBridge name.
func IsPrivateBridge(name string) bool { return privateRE.MatchString(name) }

func internalBridge(name string) bool { return IsPrivateBridge(name) && name[2] == 'i' }

// AttachPrivate attaches req's container to the private bridge req.Bridge
// (a PrivateBridge name), making the bridge and its rules first when
// needed, all under the state's lock: a concurrent PrunePrivate never
// removes a bridge between its making and its first lease. Released with
// Release, like any lease.
func (m *Manager) AttachPrivate(ctx context.Context, req Request) (*Lease, error) {
	req.Mode = ModeBridge
	req, err := normalize(req)
	if err != nil {
		return nil, err
	}
	if !IsPrivateBridge(req.Bridge) {
		return nil, fmt.Errorf("container %s: bridge %q is not a private bridge: %w", req.Container, req.Bridge, ErrBadRequest)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var lease *Lease
	err = m.st.update(func(st *State) error {
		b, err := m.ensureBridge(st, req.Bridge)
		if err != nil {
			return err
		}
		fw, err := newFirewall()
		if err != nil {
			return err
		}
		// Tagged as the bridge's own rules: attachBridge then adds no
		// others, and Prune or RemovePrivate delete them with the bridge.
		if err := fw.ensurePrivateRules(b, internalBridge(b.Name)); err != nil {
			return err
		}
		l, err := m.attachBridge(st, req)
		if err != nil {
			return err
		}
		if internalBridge(b.Name) {
			l.Gateway = "" // no default route: nothing beyond the bridge
		}
		lease = l
		return nil
	})
	if err != nil {
		return nil, err
	}
	return lease, nil
}

// RemovePrivate removes private bridge name (its rules, link, files and
// state) unless a lease still uses it. It is idempotent.
func (m *Manager) RemovePrivate(ctx context.Context, name string) error {
	if !IsPrivateBridge(name) {
		return fmt.Errorf("remove bridge %q: not a private bridge: %w", name, ErrBadRequest)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.update(func(st *State) error {
		_, err := m.removePrivate(st, name)
		return err
	})
}

// PrunePrivate removes every private bridge of the state that no lease
// (of any root) uses, and returns their names: what a job killed with -9
// left once gc released its leases. A bridge only in the kernel may be
// another state directory's, just made: it is left alone.
func (m *Manager) PrunePrivate(ctx context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Most runs find no private bridge: a shared read tells so without
	// the exclusive update, its write and its fsync (issue 16).
	if st, err := m.st.read(); err == nil && !hasPrivate(st) {
		return nil, nil
	}
	var removed []string
	err := m.st.update(func(st *State) error {
		names := map[string]bool{}
		for n := range st.Bridges {
			if IsPrivateBridge(n) {
				names[n] = true
			}
		}
		for n := range names {
			gone, err := m.removePrivate(st, n)
			if err != nil {
				return err
			}
			if gone {
				removed = append(removed, n)
			}
		}
		return nil
	})
	return removed, err
}

// hasPrivate reports whether st lists a private bridge.
func hasPrivate(st *State) bool {
	for n := range st.Bridges {
		if IsPrivateBridge(n) {
			return true
		}
	}
	return false
}

// removePrivate removes private bridge name from st and the host unless a
// lease, a reservation or a port in the kernel uses it; gone says it did.
func (m *Manager) removePrivate(st *State, name string) (gone bool, err error) {
	for _, l := range st.Leases {
		if l.Bridge == name {
			return false, nil
		}
	}
	for _, r := range st.Reserved {
		if r.Bridge == name {
			return false, nil
		}
	}
	if ports, err := bridgePorts(name); err != nil || ports > 0 {
		return false, err
	}
	fw, err := newFirewall()
	if err != nil {
		return false, err
	}
	if err := fw.deleteTagged(bridgeTag(name)); err != nil {
		return false, err
	}
	if err := deleteBridge(name); err != nil && !errors.Is(err, ErrNotManaged) {
		return false, err
	}
	if err := os.RemoveAll(filepath.Join(m.dir, name)); err != nil {
		return false, fmt.Errorf("bridge %s: %w", name, err)
	}
	delete(st.Bridges, name)
	return true, nil
}

// ensurePrivateRules adds private bridge b's rules unless it has them:
// masquerade out (outbound only) and of 127.0.0.0/8 into it (a published
// port reached on the host's loopback); in the forward chain, ahead of
// every other bridge's accepts (a drop is final, an accept is not), traffic
// within the bridge (br_netfilter shows it to the forward hook), published
// ports and replies pass, and nothing else enters it (nor, internal,
// leaves it).
func (f *firewall) ensurePrivateRules(b *Bridge, internal bool) error {
	subnet, err := netip.ParsePrefix(b.Subnet)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", b.Name, err)
	}
	f.c.AddTable(table)
	for _, ch := range chains() {
		f.c.AddChain(ch)
	}
	if err := f.c.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", TableName, err)
	}
	tag := bridgeTag(b.Name)
	if have, err := f.tagged(tag); err != nil || len(have) > 0 {
		return err
	}
	br := ifname(b.Name)
	in := func(op expr.CmpOp) []expr.Any { return matchIfname(expr.MetaKeyIIFNAME, op, br) }
	out := func(op expr.CmpOp) []expr.Any { return matchIfname(expr.MetaKeyOIFNAME, op, br) }
	established := matchCtState(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED)
	post := [][]expr.Any{join(out(expr.CmpOpEq), matchSaddr(netip.MustParsePrefix("127.0.0.0/8")), masq())}
	if !internal {
		post = append(post, join(matchSaddr(subnet), out(expr.CmpOpNeq), masq()))
	}
	forward := [][]expr.Any{ // in order, first to last
		join(in(expr.CmpOpEq), out(expr.CmpOpEq), accept()),
		join(out(expr.CmpOpEq), matchCtStatusDNAT(), accept()),
		join(out(expr.CmpOpEq), established, accept()),
		join(out(expr.CmpOpEq), drop()),
	}
	if internal {
		forward = append(forward, join(in(expr.CmpOpEq), established, accept()), join(in(expr.CmpOpEq), drop()))
	}
	for _, ex := range post {
		f.c.AddRule(&nftables.Rule{Table: table, Chain: chainRef(chainPostrouting), Exprs: ex, UserData: comment(tag)})
	}
	// InsertRule puts a rule first: insert the last one first.
	for i := len(forward) - 1; i >= 0; i-- {
		f.c.InsertRule(&nftables.Rule{Table: table, Chain: chainRef(chainForward), Exprs: forward[i], UserData: comment(tag)})
	}
	if err := f.c.Flush(); err != nil {
		return fmt.Errorf("nftables rules for bridge %s: %w", b.Name, err)
	}
	return nil
}

func drop() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}} }
