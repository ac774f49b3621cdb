package main

import (
	"bytes"
	"encoding/json"
	"runtime"
	"testing"

	"github.com/stintdev/stint/internal/testenv"
	stintnet "github.com/stintdev/stint/net"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"
)

func runNet(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String() + errb.String(), code
}

func TestNetLsEmpty(t *testing.T) {
	t.Setenv(stintnet.StateDirEnv, t.TempDir()) // not the host's
	root := t.TempDir()
	out, code := runNet(t, "--root", root, "--json", "net", "ls")
	require.Equal(t, ExitOK, code, out)
	var st stintnet.State
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Empty(t, st.Bridges)
	assert.Empty(t, st.Leases)
}

// TestNetLsPrune attaches a container in a fresh network namespace, then
// lists and prunes through the CLI.
func TestNetLsPrune(t *testing.T) {
	testenv.RequiresRoot(t)
	t.Setenv(stintnet.StateDirEnv, t.TempDir()) // the test's, like its netns
	runtime.LockOSThread()
	orig, err := netns.Get()
	require.NoError(t, err)
	ns, err := netns.New()
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			t.Errorf("restore netns: %v", err) // the locked thread dies with the goroutine
			return
		}
		orig.Close()
		ns.Close()
		runtime.UnlockOSThread()
	})

	root := t.TempDir()
	m, err := stintnet.Open(root)
	require.NoError(t, err)
	ctx := t.Context()
	l, err := m.Attach(ctx, stintnet.Request{Container: "web", Mode: stintnet.ModeBridge, Ports: []stintnet.Port{{HostPort: 8080, ContainerPort: 80}}})
	require.NoError(t, err)

	out, code := runNet(t, "--root", root, "net", "ls")
	require.Equal(t, ExitOK, code, out)
	assert.Contains(t, out, "stint0")
	assert.Contains(t, out, l.IPv4)
	assert.Contains(t, out, "8080:80/tcp")

	out, code = runNet(t, "--root", root, "net", "prune")
	require.Equal(t, ExitOK, code, out)
	assert.Equal(t, "kept bridge stint0: in use\n", out)

	require.NoError(t, m.Release(ctx, "web"))
	out, code = runNet(t, "--root", root, "--json", "net", "prune")
	require.Equal(t, ExitOK, code, out)
	assert.JSONEq(t, `{"removed_bridges":["stint0"]}`, out)
}
