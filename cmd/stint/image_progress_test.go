package main

import (
	"bytes"
	"io"
	"os/exec"
	"testing"

	"github.com/stintdev/stint/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestImagePullProgressTerminal: a pull whose stderr is a terminal (a
// pty) draws a bar per download (with its percentage, to 100 %),
// and one whose stderr is not prints plain lines per quarter, without
// escape sequences; stdout gets the result either way.
func TestImagePullProgressTerminal(t *testing.T) {
	url, fp := servedBusybox(t, false)
	bin := stintBinary(t)

	root := t.TempDir()
	addRemote(t, root, "ss", url, remote.ProtocolSimplestreams)
	master, slave := openTestPty(t)
	require.NoError(t, unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 120}))
	cmd := exec.Command(bin, "--root", root, "image", "pull", "ss:heldout/bb")
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, slave
	require.NoError(t, cmd.Start())
	slave.Close() // the child has it; EOF on the master once it exits
	var term bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&term, master); close(done) }()
	require.NoError(t, cmd.Wait(), term.String())
	<-done
	assert.Equal(t, "Image pulled with fingerprint: "+fp+"\n", stdout.String())
	tty := term.String()
	name := fp[:12] + "…" + fp[len(fp)-9:] + ".tar.gz"
	assert.Contains(t, tty, "pull "+name, "a bar named after the download")
	assert.Contains(t, tty, "100 %", "the bar reaches 100 %")
	assert.Contains(t, tty, "[==", "a bar, not a plain line")
	assert.NotContains(t, tty, "(100%)", "no plain lines on a terminal")

	root = t.TempDir()
	addRemote(t, root, "ss", url, remote.ProtocolSimplestreams)
	cmd = exec.Command(bin, "--root", root, "image", "pull", "ss:heldout/bb")
	var plainOut, plainErr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &plainOut, &plainErr
	require.NoError(t, cmd.Run(), plainErr.String())
	assert.Regexp(t, `(?m)^pull `+fp[:12]+`…\S+\.tar\.gz: .* \(0%\)\n(.*\n)*pull `+fp[:12]+`…\S+\.tar\.gz: .* \(100%\)$`, plainErr.String())
	assert.NotContains(t, plainErr.String(), "\x1b[")
	assert.Equal(t, "Image pulled with fingerprint: "+fp+"\n", plainOut.String())
}
