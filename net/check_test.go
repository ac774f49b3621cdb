package stintnet

import (
	"testing"

	"github.com/google/nftables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckFirewall(t *testing.T) {
	freshNetns(t)
	ctx := t.Context()
	require.NoError(t, writeSysctl("net/ipv4/ip_forward", "1"))
	for _, w := range CheckFirewall(ctx) {
		assert.NotEqual(t, "forward-drop", w.Code, "warning on an empty ruleset: %s", w)
	}

	// What iptables-nft makes of Docker's `iptables -P FORWARD DROP`.
	c, err := nftables.New()
	require.NoError(t, err)
	filter := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "filter"})
	drop := nftables.ChainPolicyDrop
	c.AddChain(&nftables.Chain{Name: "FORWARD", Table: filter, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &drop})
	require.NoError(t, c.Flush())

	var found []Warning
	for _, w := range CheckFirewall(ctx) {
		if w.Code == "forward-drop" {
			found = append(found, w)
		}
	}
	require.Len(t, found, 1)
	assert.Contains(t, found[0].Message, "ip filter FORWARD has policy drop")
	assert.Contains(t, found[0].Fix, "iptables -I FORWARD -i stint0 -j ACCEPT")

	// stint's own table never warns about itself, and forwarding off is
	// reported once a stint bridge exists.
	m := openManager(t)
	_, err = m.Attach(ctx, Request{Container: "c", Mode: ModeBridge})
	require.NoError(t, err)
	require.NoError(t, writeSysctl("net/ipv4/ip_forward", "0"))
	codes := map[string]int{}
	for _, w := range CheckFirewall(ctx) {
		codes[w.Code]++
	}
	assert.Equal(t, map[string]int{"forward-drop": 1, "ip-forward": 1}, codes)
}
