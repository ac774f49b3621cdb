package simplestreams

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/internal/httpx"
)

// DefaultMaxJSONSize bounds index.json and a products file (LXD's public
// products file is a few MiB).
const DefaultMaxJSONSize = 64 << 20

// Options tune a Client.
type Options struct {
	// IdleTimeout: a remote that sends nothing for this long (connect,
	// headers, body) fails the request with images.ErrTimeout.
	// Default httpx.DefaultIdleTimeout (30s).
	IdleTimeout time.Duration
	// RootCAs verify the remote's certificate (nil: the system's).
	RootCAs *x509.CertPool
	// MaxJSONSize bounds each JSON document (default DefaultMaxJSONSize).
	MaxJSONSize int64
	// HTTPClient replaces the client made from the options above.
	HTTPClient *http.Client
}

// Client reads one simplestreams remote.
type Client struct {
	remote images.Remote
	base   *url.URL
	http   *http.Client
	max    int64
}

// New returns a client of r, which must be a valid simplestreams remote
// (errors wrap images.ErrInvalidRemote).
func New(r images.Remote, o Options) (*Client, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if r.Protocol != images.ProtocolSimplestreams {
		return nil, fmt.Errorf("remote %s: %w: protocol %s is not simplestreams", r.Name, images.ErrInvalidRemote, r.Protocol)
	}
	base, _ := r.BaseURL()
	c := &Client{remote: r, base: base, http: o.HTTPClient, max: o.MaxJSONSize}
	if c.http == nil {
		c.http = httpx.NewClient(httpx.Options{Remote: r.Name, Origin: base, IdleTimeout: o.IdleTimeout, RootCAs: o.RootCAs})
	}
	if c.max <= 0 {
		c.max = DefaultMaxJSONSize
	}
	return c, nil
}

// Remote is the client's remote.
func (c *Client) Remote() images.Remote { return c.remote }

// URL joins a path the remote announced (an index's products file, an
// item) onto the remote's URL, as LXD does: base + "/" + path. A path that
// would leave the remote is refused with an *images.RefusedURLError: an
// absolute URL, a scheme-relative "//host/...", a rooted "/...", a "." or
// ".." segment (also percent-encoded), a query, a fragment, a backslash or a
// control character.
func (c *Client) URL(p string) (*url.URL, error) {
	refuse := func(why string) (*url.URL, error) {
		return nil, &images.RefusedURLError{Remote: c.remote.Name, URL: p, Reason: why}
	}
	switch {
	case p == "":
		return refuse("empty path")
	case strings.ContainsFunc(p, func(r rune) bool { return unicode.IsControl(r) || r == '\\' }):
		return refuse("control character or backslash")
	case strings.HasPrefix(p, "/"):
		return refuse("not relative to the remote (leading '/')")
	}
	rel, err := url.Parse(p)
	if err != nil {
		return refuse(err.Error())
	}
	switch {
	case rel.Scheme != "" || rel.Host != "" || rel.User != nil || rel.Opaque != "":
		return refuse("absolute URL: leaves " + httpx.Origin(c.base))
	case rel.RawQuery != "" || rel.Fragment != "" || rel.ForceQuery || strings.Contains(p, "#"):
		return refuse("query or fragment")
	}
	for _, seg := range strings.Split(rel.Path, "/") { // rel.Path is decoded: %2e%2e and %2f count
		if seg == ".." || seg == "." || seg == "" {
			return refuse(`"." or ".." or empty segment`)
		}
	}
	u := *c.base
	u.Path = c.base.Path + "/" + rel.Path
	u.RawPath = ""
	if !httpx.SameOrigin(c.base, &u) || !strings.HasPrefix(u.Path, c.base.Path+"/") {
		return refuse("leaves the remote")
	}
	return &u, nil
}

// Products reads the index and every image-downloads products file it
// names, merged.
func (c *Client) Products(ctx context.Context) (*Products, error) {
	iu, _ := c.URL(IndexPath)
	var ix Index
	if err := httpx.GetJSON(ctx, c.http, c.remote.Name, iu, c.max, &ix); err != nil {
		return nil, fmt.Errorf("remote %s: index: %w", c.remote.Name, err)
	}
	if ix.Format != "index:1.0" {
		return nil, fmt.Errorf("remote %s: index %s: %w: format %q, want index:1.0", c.remote.Name, iu.Redacted(), images.ErrBadResponse, ix.Format)
	}
	all := &Products{Products: map[string]Product{}}
	keys := make([]string, 0, len(ix.Index))
	for k := range ix.Index {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e := ix.Index[k]
		if e.DataType != "image-downloads" || len(e.Products) == 0 {
			continue
		}
		pu, err := c.URL(e.Path)
		if err != nil {
			return nil, fmt.Errorf("remote %s: index entry %s: %w", c.remote.Name, k, err)
		}
		var ps Products
		if err := httpx.GetJSON(ctx, c.http, c.remote.Name, pu, c.max, &ps); err != nil {
			return nil, fmt.Errorf("remote %s: products: %w", c.remote.Name, err)
		}
		for name, p := range ps.Products {
			if _, ok := all.Products[name]; !ok {
				all.Products[name] = p
			}
		}
	}
	return all, nil
}

// Candidate is one image on the remote: a product's version and the files
// that make the image.
type Candidate struct {
	Remote       string // the remote's name
	Alias        string // what was asked for
	Product      string // the product's key
	Version      string // the version's serial
	Fingerprint  string // the image's fingerprint, as announced
	Architecture string // LXD's name (x86_64)
	Properties   map[string]string
	Items        []Item // [combined] or [metadata, rootfs], downloaded in order
}

// Size is the bytes of the candidate's files.
func (c *Candidate) Size() int64 {
	var n int64
	for _, it := range c.Items {
		n += it.Size
	}
	return n
}

// Find picks the image alias names for arch (LXD's name or Go's: x86_64 or
// amd64; "" for the host's): the product whose aliases include alias (or
// one of whose versions' fingerprints starts with alias, 12 hex digits or
// more), and its newest version with a usable image. Preferred, as LXD
// does: a unified lxd_combined.tar.gz; else the metadata tarball with the
// squashfs rootfs; else with root.tar.xz. No match is images.ErrNotFound;
// a match only for other architectures is images.ErrPlatform.
func (c *Client) Find(ctx context.Context, alias, arch string) (*Candidate, error) {
	if arch == "" {
		arch = images.HostArch()
	}
	arch = lxdArch(arch)
	ps, err := c.Products(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ps.Products))
	for n := range ps.Products {
		names = append(names, n)
	}
	sort.Strings(names)
	var best *Candidate
	otherArch := ""
	for _, name := range names {
		p := ps.Products[name]
		cand := newestMatch(name, p, alias)
		if cand == nil {
			continue
		}
		if lxdArch(p.Architecture) != arch {
			otherArch = lxdArch(p.Architecture)
			continue
		}
		if best == nil || cand.Version > best.Version {
			best = cand
		}
	}
	switch {
	case best != nil:
		best.Remote, best.Alias = c.remote.Name, alias
		return best, nil
	case otherArch != "":
		return nil, fmt.Errorf("remote %s: image %q: %w: no %s image (there is one for %s)", c.remote.Name, alias, images.ErrPlatform, arch, otherArch)
	}
	return nil, fmt.Errorf("remote %s: image %q: %w", c.remote.Name, alias, images.ErrNotFound)
}

// newestMatch returns the newest usable version of p if alias names it.
func newestMatch(name string, p Product, alias string) *Candidate {
	byAlias := false
	for _, a := range strings.Split(p.Aliases, ",") {
		if strings.TrimSpace(a) == alias {
			byAlias = true
		}
	}
	byFP := len(alias) >= 12 && strings.Trim(alias, "0123456789abcdef") == ""
	versions := make([]string, 0, len(p.Versions))
	for v := range p.Versions {
		versions = append(versions, v)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(versions)))
	for _, v := range versions {
		items, fp := pickItems(p.Versions[v])
		if items == nil || (!byAlias && !(byFP && strings.HasPrefix(fp, alias))) {
			continue
		}
		props := map[string]string{"os": p.OperatingSystem, "release": p.Release, "variant": p.Variant, "serial": v,
			"description": strings.TrimSpace(fmt.Sprintf("%s %s %s (%s)", p.OperatingSystem, p.ReleaseTitle, p.Architecture, v))}
		for k, val := range props {
			if val == "" {
				delete(props, k)
			}
		}
		return &Candidate{Product: name, Version: v, Fingerprint: fp, Architecture: lxdArch(p.Architecture), Properties: props, Items: items}
	}
	return nil
}

// pickItems chooses the files of a version (see Find) and the fingerprint
// they make; nil when the version has no usable image. Every item must
// announce its sha256 and size.
func pickItems(v Version) ([]Item, string) {
	byType := map[string]Item{}
	for _, it := range v.Items {
		if it.SHA256 == "" || it.Size <= 0 || it.Path == "" {
			continue
		}
		if _, dup := byType[it.FileType]; !dup {
			byType[it.FileType] = it
		}
	}
	if it, ok := byType[FileCombined]; ok {
		return []Item{it}, strings.ToLower(it.SHA256)
	}
	meta, ok := byType[FileMeta]
	if !ok {
		return nil, ""
	}
	if sq, ok := byType[FileSquashfs]; ok && meta.CombinedSquashfsSHA256 != "" {
		return []Item{meta, sq}, strings.ToLower(meta.CombinedSquashfsSHA256)
	}
	if rt, ok := byType[FileRootTar]; ok {
		fp := meta.CombinedRootxzSHA256
		if fp == "" {
			fp = meta.CombinedSHA256
		}
		if fp != "" {
			return []Item{meta, rt}, strings.ToLower(fp)
		}
	}
	return nil, ""
}

// lxdArch maps Debian's/Go's architecture names to LXD's.
func lxdArch(a string) string {
	switch a {
	case "armhf":
		return "armv7l"
	case "i386":
		return "i686"
	}
	return images.Arch(a)
}

// Update is what Check found: the newest candidate, and whether it is
// newer than the stored image.
type Update struct {
	Candidate *Candidate
	Newer     bool
}

// Check is auto-update's question: does the remote have a newer version of
// img (pulled from this remote) than the stored one? Newer means another
// fingerprint with a later version serial. Nothing is downloaded; the
// caller pulls the candidate with Fetch (MoveAliases, so the local aliases
// follow it) and decides what becomes of the old image, which Fetch keeps.
func (c *Client) Check(ctx context.Context, img *images.Image) (*Update, error) {
	src := img.Source
	if src == nil || src.Protocol != images.ProtocolSimplestreams || src.Remote != c.remote.Name {
		return nil, fmt.Errorf("check image %s: %w: not pulled from simplestreams remote %s", img.Fingerprint, images.ErrInvalidRemote, c.remote.Name)
	}
	cand, err := c.Find(ctx, src.Alias, img.Architecture)
	if err != nil {
		return nil, fmt.Errorf("check image %s: %w", img.Fingerprint, err)
	}
	return &Update{Candidate: cand, Newer: cand.Fingerprint != img.Fingerprint && cand.Version > src.Version}, nil
}

// isTimeout reports whether err is a timeout of any layer.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, images.ErrTimeout) || (errors.As(err, &te) && te.Timeout())
}
