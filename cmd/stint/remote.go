package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/remote"
)

// RemoteCmd groups the remote commands: the LXD or Incus servers (and
// clusters) that run stint's containers with --remote, and the image-only
// remotes that `stint image pull` reads.
type RemoteCmd struct {
	Add    RemoteAddCmd    `cmd:"" help:"Add a remote: an LXD or Incus server (unix:///path/to/unix.socket or https://HOST:PORT), or an image server."`
	List   RemoteListCmd   `cmd:"" aliases:"ls" help:"List the remotes (NAME, URL, PROTOCOL)."`
	Remove RemoteRemoveCmd `cmd:"" aliases:"rm" help:"Forget a remote."`
}

// RemoteAddCmd adds a remote.
type RemoteAddCmd struct {
	Name              string `arg:"" help:"The remote's name (letters, digits, '.', '_', '-')."`
	URL               string `arg:"" name:"url" help:"unix:///path/to/unix.socket or https://HOST[:PORT] (lxd); https://HOST[/path] (simplestreams, oci)."`
	Token             string `help:"A trust token from 'lxc config trust add' / 'incus config trust add' on the server."`
	AcceptCertificate bool   `help:"Accept the server's certificate without a token naming it (check its fingerprint first)."`
	Protocol          string `help:"lxd (a server that runs containers), simplestreams or oci (image servers)." default:"lxd" enum:"lxd,simplestreams,oci"`
	Network           string `help:"The remote network that bridge-mode containers attach to (default: the NIC of the remote's default profile)."`
	Insecure          bool   `help:"Allow plain http to a non-loopback image server (TLS is never unverified)."`
}

// Run connects (lxd), pins the certificate and stores the remote. Errors
// are the store's own: they carry their exit code (2 for a bad name or
// URL, 3 for what the server or network says).
func (c *RemoteAddCmd) Run(g *Globals) error {
	st, err := remote.Open(g.Root)
	if err != nil {
		return err
	}
	r, err := st.Add(context.Background(), c.Name, c.URL, remote.AddOptions{
		Protocol:          remote.Protocol(c.Protocol),
		Token:             c.Token,
		AcceptCertificate: c.AcceptCertificate,
		Network:           c.Network,
		Insecure:          c.Insecure,
		Probe:             probeImageRemote,
	})
	if err != nil {
		return err
	}
	if g.JSON {
		return remote.WriteList(g.Stdout, []remote.Remote{r}, true)
	}
	_, err = fmt.Fprintf(g.Stdout, "remote %s added: %s (%s)\n", r.Name, r.URL, r.Protocol)
	return err
}

// probeImageRemote checks an image-only remote before it is stored, with
// the image store's own rules (issue 14); nothing is contacted.
func probeImageRemote(_ context.Context, r remote.Remote) error {
	return images.Remote{Name: r.Name, URL: r.URL, Protocol: images.Protocol(r.Protocol), Insecure: r.Insecure}.Validate()
}

// RemoteListCmd lists the remotes.
type RemoteListCmd struct{}

// Run prints the stored remotes and the presets.
func (RemoteListCmd) Run(g *Globals) error {
	st, err := remote.Open(g.Root)
	if err != nil {
		return err
	}
	rs, err := st.List()
	if err != nil {
		return err
	}
	return remote.WriteList(g.Stdout, rs, g.JSON)
}

// RemoteRemoveCmd forgets a remote.
type RemoteRemoveCmd struct {
	Name string `arg:"" help:"The remote to forget."`
}

// Run removes the remote from the store (the server keeps trusting the
// client certificate until its administrator removes it).
func (c *RemoteRemoveCmd) Run(g *Globals) error {
	st, err := remote.Open(g.Root)
	if err != nil {
		return err
	}
	if err := st.Remove(c.Name); err != nil {
		return err
	}
	if g.JSON {
		return writeJSON(g.Stdout, map[string]string{"removed": c.Name})
	}
	_, err = fmt.Fprintf(g.Stdout, "remote %s removed\n", c.Name)
	return err
}

// hostCode is err with exit code 3, unless it carries its own (a remote's
// errors: 2 for a name never added, 3 for the server or network).
func hostCode(err error) error {
	var coder interface{ ExitCode() int }
	if errors.As(err, &coder) {
		return err
	}
	return withCode(ExitHost, err)
}
