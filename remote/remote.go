// Package remote keeps stint's remotes: named LXD or Incus servers (and
// clusters) that run stint's containers, and image-only remotes
// (simplestreams, OCI registries) that the image store pulls from.
//
// # Store
//
// Remotes live under <root>/remotes/: remotes.json (the list, 0600) and the
// client certificate and key stint generates on the first HTTPS remote
// (client.crt, client.key, 0600). Every write replaces the file atomically
// under a lock file, so two stint processes adding remotes at once lose
// nothing. Preset remotes (LXD's images: and ubuntu:) are listed but never
// stored, never contacted by this package, and can't be removed.
//
// # Lifecycle of an lxd remote
//
//  1. Add validates the name and URL (a *UsageError otherwise), connects
//     once, and for https pins the server's certificate: it is accepted when
//     a trust token names its fingerprint, or with AcceptCertificate; the
//     client certificate is then trusted by the server through the token.
//     Only a remote that answered as trusted is stored.
//  2. Connect opens a client for a stored remote, with the pinned
//     certificate (a server that changed its certificate is refused).
//  3. Remove forgets the remote (the server keeps trusting the client
//     certificate until its administrator removes it).
//
// Errors: a bad name or URL, an unknown or existing name are *UsageError
// (exit 2); anything the server or the network says is *Error (exit 3). Both
// name the remote and wrap a sentinel of this package for errors.Is.
package remote

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"strings"

	"github.com/stintdev/stint/internal/lazyre"
)

// Protocol is how stint talks to a remote.
type Protocol string

// Protocols. Only lxd remotes run containers; the others serve images.
const (
	ProtocolLXD           Protocol = "lxd"           // the LXD or Incus REST API
	ProtocolSimplestreams Protocol = "simplestreams" // an image server (LXD's images: remote)
	ProtocolOCI           Protocol = "oci"           // an OCI registry
)

// Remote is one stored (or preset) remote.
type Remote struct {
	Name     string   `json:"name"`
	URL      string   `json:"url"`
	Protocol Protocol `json:"protocol"`
	// Certificate is the server's certificate (PEM) pinned when an https
	// lxd remote was added; empty for unix sockets.
	Certificate string `json:"certificate,omitempty"`
	// Network is the remote's network a bridge-mode container attaches
	// to; empty: the NIC of the remote's default profile.
	Network string `json:"network,omitempty"`
	// Insecure allows plain http to a non-loopback image server.
	Insecure bool `json:"insecure,omitempty"`
	// Preset marks a built-in remote: listed, never stored or contacted.
	Preset bool `json:"preset,omitempty"`
}

// Runtime reports whether r runs containers (an lxd remote).
func (r Remote) Runtime() bool { return r.Protocol == ProtocolLXD }

// Unix reports whether r is a local daemon's unix socket, where a host
// directory can be given to a container as a disk device.
func (r Remote) Unix() bool { return strings.HasPrefix(r.URL, "unix://") }

// SocketPath is the unix socket of a unix:// remote ("" otherwise).
func (r Remote) SocketPath() string {
	if !r.Unix() {
		return ""
	}
	return strings.TrimPrefix(r.URL, "unix://")
}

// Presets are LXD's own image remotes, listed so that `stint remote list`
// shows what `images:` means; nothing here contacts them.
var Presets = []Remote{
	{Name: "images", URL: "https://images.linuxcontainers.org", Protocol: ProtocolSimplestreams, Preset: true},
	{Name: "ubuntu", URL: "https://cloud-images.ubuntu.com/releases", Protocol: ProtocolSimplestreams, Preset: true},
}

func preset(name string) (Remote, bool) {
	for _, p := range Presets {
		if p.Name == name {
			return p, true
		}
	}
	return Remote{}, false
}

// Sentinels, wrapped by *UsageError and *Error.
var (
	ErrBadName     = errors.New("invalid remote name")
	ErrBadURL      = errors.New("invalid remote url")
	ErrBadProtocol = errors.New("unknown remote protocol")
	ErrUnknown     = errors.New("no such remote")
	ErrExists      = errors.New("remote already exists")
	ErrPreset      = errors.New("preset remote")
	ErrNotRuntime  = errors.New("remote does not run containers")

	ErrUnreachable          = errors.New("remote unreachable")
	ErrUntrustedCertificate = errors.New("server certificate not trusted")
	ErrCertificateChanged   = errors.New("server certificate changed since the remote was added")
	ErrNotTrusted           = errors.New("server does not trust this client")
	ErrTokenRejected        = errors.New("trust token rejected")
)

// UsageError is a mistake in what the user asked for: a malformed name or
// URL, a remote that was never added. The CLI exits 2.
type UsageError struct {
	Remote string
	Err    error
}

func (e *UsageError) Error() string { return fmt.Sprintf("remote %q: %v", e.Remote, e.Err) }

// Unwrap returns the cause.
func (e *UsageError) Unwrap() error { return e.Err }

// ExitCode is 2 (bad usage).
func (e *UsageError) ExitCode() int { return 2 }

// Error is a failure reaching or talking to a remote, or keeping the
// store: the network, TLS, the server's answer. The CLI exits 3.
type Error struct {
	Remote string
	Op     string // what was being done: "connect", "add", "save", ...
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("remote %q: %s: %v", e.Remote, e.Op, e.Err) }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ExitCode is 3 (a host or system failure).
func (e *Error) ExitCode() int { return 3 }

func usage(name string, err error) error { return &UsageError{Remote: name, Err: err} }

var nameRE = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidName checks a remote name: a letter or digit, then letters, digits,
// '.', '_' or '-', at most 63 characters (no ':' or '/', which separate a
// remote from an image alias in "REMOTE:ALIAS").
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return usage(name, fmt.Errorf("%w: use letters, digits, '.', '_' and '-' (at most 63), starting with a letter or digit", ErrBadName))
	}
	return nil
}

// ParseProtocol returns the protocol named p ("" is lxd).
func ParseProtocol(p string) (Protocol, error) {
	switch Protocol(p) {
	case "", ProtocolLXD:
		return ProtocolLXD, nil
	case ProtocolSimplestreams, ProtocolOCI:
		return Protocol(p), nil
	}
	return "", fmt.Errorf("%w %q: want lxd, simplestreams or oci", ErrBadProtocol, p)
}

// NormalizeURL checks raw for protocol p and returns its canonical form.
// lxd: unix:///absolute/path/to/unix.socket, or https://HOST[:PORT] (port
// 8443 by default; no path, query or user). simplestreams and oci:
// https://HOST[:PORT][/path], or http:// to a loopback address (or any,
// with insecure).
func NormalizeURL(raw string, p Protocol, insecure bool) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrBadURL, raw, errors.Unwrap(err))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("%w %q: no user, query or fragment allowed", ErrBadURL, raw)
	}
	if p == ProtocolLXD {
		return lxdURL(raw, u)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !insecure && !loopback(u.Hostname()) {
			return "", fmt.Errorf("%w %q: plain http only to a loopback address, or with --insecure", ErrBadURL, raw)
		}
	default:
		return "", fmt.Errorf("%w %q: want http:// or https://", ErrBadURL, raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", fmt.Errorf("%w %q: no host", ErrBadURL, raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u.String(), nil
}

func lxdURL(raw string, u *url.URL) (string, error) {
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !path.IsAbs(u.Path) || path.Clean(u.Path) != u.Path {
			return "", fmt.Errorf("%w %q: want unix:///absolute/path/to/unix.socket", ErrBadURL, raw)
		}
		return "unix://" + u.Path, nil
	case "https":
		if u.Hostname() == "" {
			return "", fmt.Errorf("%w %q: no host", ErrBadURL, raw)
		}
		if u.Path != "" && u.Path != "/" {
			return "", fmt.Errorf("%w %q: an lxd remote's url has no path", ErrBadURL, raw)
		}
		port := u.Port()
		if port == "" {
			port = "8443"
		} else if _, err := net.LookupPort("tcp", port); err != nil {
			return "", fmt.Errorf("%w %q: bad port", ErrBadURL, raw)
		}
		return "https://" + net.JoinHostPort(u.Hostname(), port), nil
	}
	return "", fmt.Errorf("%w %q: want unix:///path/to/unix.socket or https://HOST:PORT", ErrBadURL, raw)
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
