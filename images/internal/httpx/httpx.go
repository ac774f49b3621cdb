// Package httpx is the HTTP client of stint's image remotes: bounded in
// time (connect, TLS, headers, and an idle timeout on the body, so a
// server that stops sending is an error rather than a hang), confined to
// the remote's own origin (a redirect elsewhere is refused), and with
// bounded reads of JSON documents.
package httpx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stintdev/stint/images"
)

// DefaultIdleTimeout is how long a remote may send nothing (no connection,
// no headers, no body bytes) before the request fails with images.ErrTimeout.
const DefaultIdleTimeout = 30 * time.Second

// Options build a client.
type Options struct {
	Remote      string         // the remote's name, for errors
	Origin      *url.URL       // scheme://host:port a redirect may not leave
	IdleTimeout time.Duration  // default DefaultIdleTimeout
	RootCAs     *x509.CertPool // nil: the system's
}

// NewClient returns an *http.Client with the timeouts and the redirect rule.
func NewClient(o Options) *http.Client {
	idle := o.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	return &http.Client{
		Transport: NewTransport(o),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return fmt.Errorf("remote %s: %w: more than 5 redirects", o.Remote, images.ErrBadResponse)
			}
			if o.Origin != nil && !SameOrigin(o.Origin, req.URL) {
				return &images.RefusedURLError{Remote: o.Remote, URL: req.URL.String(), Reason: "redirect leaves " + Origin(o.Origin)}
			}
			return nil
		},
	}
}

// NewTransport is an http.RoundTripper with connect, TLS and header
// timeouts and the body idle timeout.
func NewTransport(o Options) http.RoundTripper {
	idle := o.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: idle, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   idle,
		ResponseHeaderTimeout: idle,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
	}
	return &idleTransport{base: base, idle: idle}
}

// idleTransport cancels a request when nothing arrives for idle: before
// the headers, and between reads of the body.
type idleTransport struct {
	base http.RoundTripper
	idle time.Duration
}

func (t *idleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	var stalled atomic.Bool
	timer := time.AfterFunc(t.idle, func() { stalled.Store(true); cancel() })
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		timer.Stop()
		cancel()
		var ne net.Error
		if stalled.Load() || (errors.As(err, &ne) && ne.Timeout()) {
			return nil, fmt.Errorf("%w (nothing for %s)", images.ErrTimeout, t.idle)
		}
		return nil, err
	}
	resp.Body = &idleBody{rc: resp.Body, timer: timer, idle: t.idle, cancel: cancel, stalled: &stalled}
	return resp, nil
}

type idleBody struct {
	rc      io.ReadCloser
	timer   *time.Timer
	idle    time.Duration
	cancel  context.CancelFunc
	stalled *atomic.Bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	if err != nil && !errors.Is(err, io.EOF) && b.stalled.Load() {
		return n, fmt.Errorf("%w (no data for %s)", images.ErrTimeout, b.idle)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	b.cancel()
	return b.rc.Close()
}

// Origin is u's scheme://host:port, the port made explicit.
func Origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(u.Hostname(), port)
}

// SameOrigin reports whether u has base's scheme, host and port.
func SameOrigin(base, u *url.URL) bool { return Origin(base) == Origin(u) }

// Get fetches u, failing with images.ErrBadResponse on a status other than
// 200. The caller closes the body.
func Get(ctx context.Context, c *http.Client, remote string, u *url.URL) (*http.Response, error) {
	return GetFrom(ctx, c, remote, u, 0)
}

// ErrNoResume: the server answered a Range request with the whole file.
var ErrNoResume = errors.New("server does not resume downloads")

// GetFrom is Get from byte offset on (a Range request when offset > 0,
// which must be answered 206 from that offset, else ErrNoResume).
func GetFrom(ctx context.Context, c *http.Client, remote string, u *url.URL, offset int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", remote, err)
	}
	req.Header.Set("User-Agent", "stint")
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named below, once
		}
		return nil, fmt.Errorf("get %s: %w", u.Redacted(), err)
	}
	if offset > 0 && resp.StatusCode == http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("get %s from byte %d: %w", u.Redacted(), offset, ErrNoResume)
	}
	if offset > 0 && resp.StatusCode == http.StatusPartialContent {
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", offset)) {
			resp.Body.Close()
			return nil, fmt.Errorf("get %s from byte %d: %w: Content-Range %q", u.Redacted(), offset, images.ErrBadResponse, resp.Header.Get("Content-Range"))
		}
		return resp, nil
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, &StatusError{URL: u.Redacted(), Code: resp.StatusCode}
	}
	return resp, nil
}

// StatusError is a response other than 200; it matches
// images.ErrBadResponse (a missing file on a remote is the remote's
// failure, not a bad reference).
type StatusError struct {
	URL  string
	Code int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("get %s: %s", e.URL, http.StatusText(e.Code))
}

// Is matches images.ErrBadResponse.
func (e *StatusError) Is(target error) bool { return target == images.ErrBadResponse }

// GetJSON fetches u and decodes at most max bytes of JSON into v.
func GetJSON(ctx context.Context, c *http.Client, remote string, u *url.URL, max int64, v any) error {
	resp, err := Get(ctx, c, remote, u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return fmt.Errorf("get %s: %w", u.Redacted(), err)
	}
	if int64(len(data)) > max {
		return fmt.Errorf("get %s: %w: larger than %d bytes", u.Redacted(), images.ErrBadResponse, max)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("get %s: %w: %v", u.Redacted(), images.ErrBadResponse, err)
	}
	return nil
}
