package main

import (
	"bytes"
	"encoding/json"
	"runtime"
	"testing"

	"github.com/google/nftables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"

	"github.com/stintdev/stint/internal/testenv"
)

// inFreshNetns moves the test's goroutine, locked to its thread, into a new
// network namespace until the test ends, so that firewall rules it makes
// touch nothing of the host's.
func inFreshNetns(t *testing.T) {
	t.Helper()
	testenv.RequiresRoot(t)
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current netns: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("new netns: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			t.Errorf("back to the original netns: %v", err) // the locked thread dies with the goroutine
			return
		}
		orig.Close()
		ns.Close()
		runtime.UnlockOSThread()
	})
}

// TestCheckFirewallWarnings runs `stint check` in a network namespace
// without and then with a forward chain whose policy is drop (what Docker
// does to iptables' FORWARD): the warning appears, with its fix, in --json
// and in the text report.
func TestCheckFirewallWarnings(t *testing.T) {
	inFreshNetns(t)
	check := func(args ...string) (checkReport, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		run(append([]string{"--root", t.TempDir(), "check"}, args...), &stdout, &stderr)
		var r checkReport
		if len(args) > 0 {
			require.NoError(t, json.Unmarshal(stdout.Bytes(), &r), "stdout is not the JSON report: %s", stdout.String())
		}
		return r, stdout.String()
	}

	r, _ := check("--json")
	require.NotNil(t, r.Network, "network_warnings must be a list, not null")
	for _, w := range r.Network {
		assert.NotEqual(t, "forward-drop", w.Code, "a forward-drop warning in a namespace without a firewall: %+v", w)
	}
	_, text := check()
	assert.Contains(t, text, "network (bridge mode)\n  ok    firewall: nothing drops bridged traffic\n")

	c, err := nftables.New()
	require.NoError(t, err)
	tbl := c.AddTable(&nftables.Table{Name: "hostfw", Family: nftables.TableFamilyINet})
	c.AddChain(&nftables.Chain{Name: "forward", Table: tbl, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: ptr(nftables.ChainPolicyDrop)})
	require.NoError(t, c.Flush())

	r, _ = check("--json")
	var got []string
	for _, w := range r.Network {
		got = append(got, w.Code)
		if w.Code == "forward-drop" {
			assert.Contains(t, w.Message, "inet hostfw forward")
			assert.Contains(t, w.Fix, "nft insert rule inet hostfw forward")
		}
	}
	assert.Contains(t, got, "forward-drop")
	_, text = check()
	assert.Contains(t, text, "  warn  forward-drop: the forward chain inet hostfw forward has policy drop")
	assert.Contains(t, text, "        fix: allow the bridge's traffic before the drop")
}

func ptr[T any](v T) *T { return &v }
