package images

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// Errors of remote image sources (simplestreams, OCI), checked with
// errors.Is. A caller maps ErrInvalidRemote, ErrInvalidAlias and
// ErrNotFound to bad usage (exit 2); ErrVerify, ErrRefusedURL, ErrTimeout,
// ErrBadResponse and ErrPlatform are failures of the remote or the host
// (exit 3): nothing was stored.
var (
	// ErrInvalidRemote: a remote's name, URL or protocol is not usable, or
	// an image reference on it is malformed.
	ErrInvalidRemote = errors.New("invalid remote")
	// ErrInvalidAlias: an alias is empty or has a character or segment
	// that aliases may not have.
	ErrInvalidAlias = errors.New("invalid alias")
	// ErrVerify: a download does not match its announced sha256, size,
	// fingerprint or digest.
	ErrVerify = errors.New("verification failed")
	// ErrRefusedURL: a URL announced by a remote (an index, an item, a
	// redirect) leaves the remote's own scheme://host:port.
	ErrRefusedURL = errors.New("refused URL")
	// ErrTimeout: a remote stopped answering (connect, headers, or no body
	// data for the idle timeout).
	ErrTimeout = errors.New("remote timed out")
	// ErrBadResponse: a remote answered with an error status, a document
	// that is not what the protocol says, or one larger than allowed.
	ErrBadResponse = errors.New("bad response from remote")
	// ErrPlatform: the remote has the image, but not for this platform.
	ErrPlatform = errors.New("no image for this platform")
)

// Protocol is how an image remote is read.
type Protocol string

// The protocols of image-only remotes. ("lxd", the runtime remote, is
// another issue's and not handled here.)
const (
	ProtocolSimplestreams Protocol = "simplestreams"
	ProtocolOCI           Protocol = "oci"
)

// Remote is an image source: what `stint remote add NAME URL --protocol
// simplestreams|oci [--insecure]` records. This package only defines and
// validates it; the on-disk remote store (<root>/remotes/) and `stint
// remote` belong to the remote-runtime work, which holds values of this type.
//
// URL may carry a path (http://127.0.0.1:8000/mirror): a simplestreams
// item's path is joined onto it, as LXD does; for OCI the path is a
// repository prefix (https://registry.example/library + alpine:3.20).
// Plain http:// is allowed only for loopback hosts, or with Insecure.
// Insecure never turns TLS verification off.
type Remote struct {
	Name     string   `json:"name"`
	URL      string   `json:"url"`
	Protocol Protocol `json:"protocol"`
	Insecure bool     `json:"insecure,omitempty"`
}

// Validate checks the name, protocol and URL. Errors wrap ErrInvalidRemote.
func (r Remote) Validate() error {
	if r.Name == "" || strings.ContainsFunc(r.Name, func(c rune) bool {
		return c == ':' || c == '/' || unicode.IsSpace(c) || unicode.IsControl(c)
	}) {
		return fmt.Errorf("remote %q: %w: a name is non-empty, without ':', '/' or white space", r.Name, ErrInvalidRemote)
	}
	switch r.Protocol {
	case ProtocolSimplestreams, ProtocolOCI:
	default:
		return fmt.Errorf("remote %s: %w: protocol %q (want simplestreams or oci)", r.Name, ErrInvalidRemote, r.Protocol)
	}
	_, err := r.BaseURL()
	return err
}

// BaseURL parses the remote's URL and applies the scheme rules: https, or
// http for a loopback host or an Insecure remote; no user info, query or
// fragment. The path keeps no trailing slash.
func (r Remote) BaseURL() (*url.URL, error) {
	bad := func(why string, args ...any) error {
		return fmt.Errorf("remote %s: %w: url %q: %s", r.Name, ErrInvalidRemote, r.URL, fmt.Sprintf(why, args...))
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return nil, bad("%v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, bad("scheme must be https (or http for loopback)")
	case u.Host == "" || u.Hostname() == "":
		return nil, bad("no host")
	case u.User != nil:
		return nil, bad("user info is not allowed")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, bad("query and fragment are not allowed")
	case u.Scheme == "http" && !r.Insecure && !IsLoopback(u.Hostname()):
		return nil, bad("http:// only for loopback addresses (or mark the remote insecure)")
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == ".." || seg == "." {
			return nil, bad("dot segments in the path")
		}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// IsLoopback reports whether host (no port) is a loopback address or
// "localhost".
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// RefusedURLError is a URL a remote announced that leaves it; it matches
// ErrRefusedURL.
type RefusedURLError struct {
	Remote string // the remote's name
	URL    string // as announced
	Reason string
}

func (e *RefusedURLError) Error() string {
	return fmt.Sprintf("refused URL %q: %s", e.URL, e.Reason) // callers name the remote
}

// Is makes errors.Is(err, ErrRefusedURL) true.
func (e *RefusedURLError) Is(target error) bool { return target == ErrRefusedURL }

// VerifyError is a download that does not match what was announced; it
// matches ErrVerify and names the item (a file, a layer digest).
type VerifyError struct {
	Item string // the item: a simplestreams path, an OCI blob digest
	What string // "sha256", "size", "fingerprint", "digest"
	Want string
	Got  string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("verify %s: %s mismatch: want %s, got %s", e.Item, e.What, e.Want, e.Got)
}

// Is makes errors.Is(err, ErrVerify) true.
func (e *VerifyError) Is(target error) bool { return target == ErrVerify }

// Source records where a pulled image came from, kept in the store's index
// for `image list` and auto-update.
type Source struct {
	Remote   string    `json:"remote"`             // the remote's name
	URL      string    `json:"url"`                // its URL at pull time
	Protocol Protocol  `json:"protocol"`           // simplestreams or oci
	Alias    string    `json:"alias"`              // the alias or reference pulled
	Version  string    `json:"version,omitempty"`  // simplestreams: the version (serial) pulled
	Digest   string    `json:"digest,omitempty"`   // oci: the manifest digest
	Pulled   time.Time `json:"pulled_at,omitzero"` // when
	// AutoUpdate: a use asks the remote for a newer version (at most
	// every refresh interval) and pulls it; see the runner's policy.
	AutoUpdate bool `json:"auto_update,omitempty"`
	// Checked is when the remote was last asked for a newer version
	// (zero: never since the pull).
	Checked time.Time `json:"checked_at,omitzero"`
}

// Ref is the reference the image was pulled by: REMOTE:ALIAS, or
// oci-layout:DIR[:TAG] for a local OCI layout.
func (s *Source) Ref() string {
	if s.Remote == "oci-layout" {
		return "oci-layout:" + strings.TrimPrefix(s.Alias, "oci-layout:")
	}
	return s.Remote + ":" + s.Alias
}

// PulledLater reports whether pulled image a is a later pull than b of
// the same source: pulled later, or (pull times are kept to the second)
// pulled in the same second and created later, the newer version.
func PulledLater(a, b *Image) bool {
	if !a.Source.Pulled.Equal(b.Source.Pulled) {
		return a.Source.Pulled.After(b.Source.Pulled)
	}
	return a.Created.After(b.Created)
}

// UpdateSource changes the source record of the image with fingerprint fp
// (a pulled image: ErrNotFound for one without a source) under the
// store's lock, and returns the image as stored.
func (s *Store) UpdateSource(fp string, fn func(src *Source)) (*Image, error) {
	var out *Image
	err := s.withLock(func(ix *index) (bool, error) {
		for _, img := range ix.Images {
			if img.Fingerprint == fp && img.Source != nil {
				fn(img.Source)
				out = img.clone()
				return true, nil
			}
		}
		return false, fmt.Errorf("pulled image %s: %w", fp, ErrNotFound)
	})
	if err != nil {
		return nil, fmt.Errorf("record source of image %s: %w", fp, err)
	}
	return out, nil
}

func (s *Source) clone() *Source {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

// String is "remote:alias@version" (or @digest), as `image list` shows it.
func (s *Source) String() string {
	if s == nil {
		return ""
	}
	out := s.Remote + ":" + s.Alias
	switch {
	case s.Version != "":
		out += "@" + s.Version
	case s.Digest != "":
		out += "@" + s.Digest
	}
	return out
}

// Record applies opts' Aliases (with MoveAliases) and Source to the image
// with fingerprint fp, already in the store: a second pull of the same
// image downloads nothing. It is ErrNotFound when fp is not stored.
func (s *Store) Record(fp string, opts ImportOptions) (*Image, error) {
	var out *Image
	err := s.withLock(func(ix *index) (bool, error) {
		var img *Image
		for _, have := range ix.Images {
			if have.Fingerprint == fp {
				img = have
			}
		}
		if img == nil {
			return false, fmt.Errorf("image %s: %w", fp, ErrNotFound)
		}
		if err := checkAliases(ix, fp, opts.Aliases, opts.MoveAliases); err != nil {
			return false, err
		}
		img.addAliases(opts.Aliases...)
		if opts.Source != nil {
			img.Source = opts.Source.clone()
		}
		out = img.clone()
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("record image %s: %w", fp, err)
	}
	return out, nil
}
