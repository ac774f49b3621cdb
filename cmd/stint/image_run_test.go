package main

import (
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/stintdev/stint/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// freeAddr is a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// TestRunFromImageServe: one root's `stint image serve` is a simplestreams
// remote of another; a spec with image = "ss:heldout/bb" there pulls it on
// first use and runs; once the server is stopped (SIGTERM, exit 0) the
// job still runs from the stored image, which image list shows as pulled
// from ss and image prune --unused-for 1m keeps.
func TestRunFromImageServe(t *testing.T) {
	src := newCLI(t)
	out, code := src.run(t, "image", "build", "--builder", "busybox", "--alias", "heldout/bb")
	require.Equal(t, 0, code, out)
	addr := freeAddr(t)
	srv := src.startUntil(t, "serving images on http://"+addr, "image", "serve", "--listen", addr)

	f := newCLI(t)
	addRemote(t, f.root, "ss", "http://"+addr, remote.ProtocolSimplestreams)
	p := f.spec(t, `
[job.remote]
image = "ss:heldout/bb"
run = ["echo from-$(cat /etc/hostname | cut -c1-6)", "test -x /bin/busybox && echo has-busybox"]
`)
	out, code = f.run(t, "validate", p)
	require.Equal(t, 0, code, out)
	out, code = f.run(t, "run", p)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "has-busybox")

	require.NoError(t, srv.Process.Signal(syscall.SIGTERM))
	require.NoError(t, srv.Wait(), "image serve exits 0 on SIGTERM")

	out, code = f.run(t, "run", p)
	require.Equal(t, 0, code, "the stored image, the remote not asked: %s", out)
	assert.Contains(t, out, "has-busybox")
	out, code = f.run(t, "image", "list")
	require.Equal(t, 0, code, out)
	assert.Regexp(t, `\sss:heldout/bb@\S+\n`, out)
	assert.Equal(t, 2, len(strings.Split(strings.TrimSpace(out), "\n")), out)
	out, code = f.run(t, "image", "prune", "--unused-for", "1m")
	require.Equal(t, 0, code, out)
	out, code = f.run(t, "image", "list")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "ss:heldout/bb@", "pruned although used seconds ago")
	f.assertClean(t)
}
