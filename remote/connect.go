package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	lxd "github.com/canonical/lxd/client"
	"github.com/canonical/lxd/shared"
	"github.com/canonical/lxd/shared/api"
	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"
)

// UserAgent is what stint calls itself to servers.
const UserAgent = "stint"

// dialTimeout bounds reaching a server when the context has no deadline.
const dialTimeout = 15 * time.Second

// AddOptions tune Add.
type AddOptions struct {
	Protocol Protocol // "" means lxd
	// Token is a trust token from `lxc config trust add` (or incus's): it
	// makes the server trust stint's client certificate, and it names the
	// server certificate's fingerprint, which is then accepted.
	Token string
	// AcceptCertificate accepts the server's certificate without a token
	// naming it (the user checked its fingerprint).
	AcceptCertificate bool
	// Network is the remote network bridge-mode containers attach to.
	Network string
	// Insecure allows plain http to a non-loopback image server.
	Insecure bool
	// Probe checks a simplestreams or oci remote before it is stored: the
	// image store supplies it (images/, issue 14). nil stores the remote
	// after validating its URL only; image remotes are never contacted
	// here.
	Probe func(ctx context.Context, r Remote) error
}

// Add validates, checks and stores a remote. For an lxd remote it
// connects: a unix socket must answer; over https the server certificate
// is pinned (see the package doc) and the client certificate trusted.
func (s *Store) Add(ctx context.Context, name, rawURL string, opts AddOptions) (Remote, error) {
	if err := ValidName(name); err != nil {
		return Remote{}, err
	}
	p, err := ParseProtocol(string(opts.Protocol))
	if err != nil {
		return Remote{}, usage(name, err)
	}
	u, err := NormalizeURL(rawURL, p, opts.Insecure)
	if err != nil {
		return Remote{}, usage(name, err)
	}
	r := Remote{Name: name, URL: u, Protocol: p, Network: opts.Network, Insecure: opts.Insecure}
	if p != ProtocolLXD && opts.Network != "" {
		return Remote{}, usage(name, fmt.Errorf("%w: a network is for lxd remotes", ErrBadProtocol))
	}
	if err := s.checkFree(name); err != nil {
		return Remote{}, err
	}
	switch {
	case p != ProtocolLXD:
		if opts.Probe != nil {
			if err := opts.Probe(ctx, r); err != nil {
				return Remote{}, &Error{Remote: name, Op: "add", Err: err}
			}
		}
	case r.Unix():
		c, err := s.Connect(ctx, r)
		if err != nil {
			return Remote{}, err
		}
		c.Disconnect()
	default:
		if r.Certificate, err = s.trust(ctx, r, opts); err != nil {
			return Remote{}, err
		}
	}
	if err := s.put(r); err != nil {
		return Remote{}, err
	}
	return r, nil
}

// trust pins the https remote r's certificate and makes the server trust
// the client certificate; it returns the pinned certificate (PEM).
func (s *Store) trust(ctx context.Context, r Remote, opts AddOptions) (string, error) {
	fail := func(err error) (string, error) { return "", &Error{Remote: r.Name, Op: "add", Err: err} }
	cert, err := serverCert(ctx, r.URL)
	if err != nil {
		return fail(err)
	}
	fp := shared.CertFingerprint(cert)
	var tok *api.CertificateAddToken
	if opts.Token != "" {
		if tok, err = shared.CertificateTokenDecode(strings.TrimSpace(opts.Token)); err != nil {
			return fail(fmt.Errorf("%w: not a trust token (from lxc config trust add): %v", ErrTokenRejected, err))
		}
	}
	switch {
	case tok != nil && tok.Fingerprint == fp:
	case opts.AcceptCertificate:
	case tok != nil:
		return fail(fmt.Errorf("%w: the server's certificate %s is not the one the token names (%s)", ErrUntrustedCertificate, fp, tok.Fingerprint))
	default:
		return fail(fmt.Errorf("%w: fingerprint %s; check it and pass --accept-certificate, or pass a --token from that server", ErrUntrustedCertificate, fp))
	}
	r.Certificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	c, err := s.connectHTTPS(ctx, r, ctx)
	if err != nil {
		return "", err
	}
	defer c.Disconnect()
	srv, _, err := c.GetServer()
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrUnreachable, err))
	}
	if srv.Auth != "trusted" || opts.Token != "" {
		if opts.Token == "" {
			return fail(fmt.Errorf("%w: pass a --token from `lxc config trust add` on the server", ErrNotTrusted))
		}
		req := api.CertificatesPost{Type: api.CertificateTypeClient, Name: "stint"}
		if c.HasExtension("explicit_trust_token") {
			req.TrustToken = opts.Token
		} else {
			req.Password = opts.Token // LXD 5.0 takes a token in the password field
		}
		// An already trusted client's token is spent all the same (as lxc
		// remote add does); its conflict is no error.
		if err := c.CreateCertificate(req); err != nil && !api.StatusErrorCheck(err, http.StatusConflict) {
			return fail(fmt.Errorf("%w: %w", ErrTokenRejected, err))
		}
		if srv, _, err = c.GetServer(); err != nil {
			return fail(fmt.Errorf("%w: %w", ErrUnreachable, err))
		}
		if srv.Auth != "trusted" {
			return fail(fmt.Errorf("%w: the token was accepted but the server still does not trust this client", ErrNotTrusted))
		}
	}
	return r.Certificate, nil
}

// Connect opens a client for the lxd remote r (see ConnectName). The
// client lives until Disconnect: ctx bounds connecting only.
func (s *Store) Connect(ctx context.Context, r Remote) (lxd.InstanceServer, error) {
	if !r.Runtime() {
		return nil, usage(r.Name, fmt.Errorf("%w: its protocol is %s", ErrNotRuntime, r.Protocol))
	}
	if !r.Unix() {
		return s.connectHTTPS(ctx, r, context.Background())
	}
	sock := r.SocketPath()
	fi, err := os.Stat(sock)
	if err != nil {
		return nil, &Error{Remote: r.Name, Op: "connect", Err: fmt.Errorf("%w: %w", ErrUnreachable, err)}
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return nil, &Error{Remote: r.Name, Op: "connect", Err: fmt.Errorf("%w: %s is not a socket", ErrUnreachable, sock)}
	}
	c, err := lxd.ConnectLXDUnixWithContext(context.Background(), sock, &lxd.ConnectionArgs{UserAgent: UserAgent, SkipGetServer: true})
	if err != nil {
		return nil, &Error{Remote: r.Name, Op: "connect", Err: fmt.Errorf("%w: %w", ErrUnreachable, err)}
	}
	if err := probe(ctx, c); err != nil {
		c.Disconnect()
		return nil, &Error{Remote: r.Name, Op: "connect", Err: fmt.Errorf("%w: %w", ErrUnreachable, err)}
	}
	return c, nil
}

// ConnectName is Get then Connect.
func (s *Store) ConnectName(ctx context.Context, name string) (Remote, lxd.InstanceServer, error) {
	r, err := s.Get(name)
	if err != nil {
		return Remote{}, nil, err
	}
	c, err := s.Connect(ctx, r)
	return r, c, err
}

// probe runs GetServer on c, giving up when ctx ends (the client itself
// only knows its connection context).
func probe(ctx context.Context, c lxd.InstanceServer) error {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, _, err := c.GetServer(); done <- err }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// connectHTTPS checks that the server still shows the pinned certificate
// (a typed error if not, instead of a TLS failure deep in the client),
// then connects with the client certificate. dialCtx bounds the check;
// the client keeps clientCtx.
func (s *Store) connectHTTPS(dialCtx context.Context, r Remote, clientCtx context.Context) (lxd.InstanceServer, error) {
	fail := func(err error) (lxd.InstanceServer, error) {
		return nil, &Error{Remote: r.Name, Op: "connect", Err: err}
	}
	cert, err := serverCert(dialCtx, r.URL)
	if err != nil {
		return fail(err)
	}
	pinned, _ := pem.Decode([]byte(r.Certificate))
	if pinned == nil || string(pinned.Bytes) != string(cert.Raw) {
		return fail(fmt.Errorf("%w: it now shows %s; remove and add the remote again if that is expected", ErrCertificateChanged, shared.CertFingerprint(cert)))
	}
	crt, key, err := s.clientCert()
	if err != nil {
		return fail(err)
	}
	c, err := lxd.ConnectLXDWithContext(clientCtx, r.URL, &lxd.ConnectionArgs{
		TLSServerCert: r.Certificate,
		TLSClientCert: string(crt),
		TLSClientKey:  string(key),
		UserAgent:     UserAgent,
		SkipGetServer: true,
	})
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrUnreachable, err))
	}
	if err := probe(dialCtx, c); err != nil {
		c.Disconnect()
		return fail(fmt.Errorf("%w: %w", ErrUnreachable, err))
	}
	return c, nil
}

// serverCert returns the certificate a server shows, unverified.
func serverCert(ctx context.Context, rawURL string) (*x509.Certificate, error) {
	host := strings.TrimPrefix(rawURL, "https://")
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}} // #nosec G402: read only to be pinned or refused
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: %s showed no certificate", ErrUnreachable, host)
	}
	return certs[0], nil
}

// clientCert returns stint's client certificate and key, generating them
// (0600) on first use.
func (s *Store) clientCert() (crt, key []byte, err error) {
	cf, kf := filepath.Join(s.dir, certFile), filepath.Join(s.dir, keyFile)
	lk := flock.New(filepath.Join(s.dir, lockFile))
	if err := lk.Lock(); err != nil {
		return nil, nil, fmt.Errorf("lock store: %w", err)
	}
	defer lk.Unlock()
	crt, err1 := os.ReadFile(cf)
	key, err2 := os.ReadFile(kf)
	if err1 == nil && err2 == nil {
		return crt, key, nil
	}
	if !errors.Is(err1, fs.ErrNotExist) && err1 != nil {
		return nil, nil, fmt.Errorf("client certificate: %w", err1)
	}
	host, _ := os.Hostname()
	crt, key, err = shared.GenerateMemCert(true, shared.CertOptions{CommonName: "stint@" + host})
	if err != nil {
		return nil, nil, fmt.Errorf("generate client certificate: %w", err)
	}
	if err := renameio.WriteFile(kf, key, 0o600); err != nil {
		return nil, nil, fmt.Errorf("save client key: %w", err)
	}
	if err := renameio.WriteFile(cf, crt, 0o600); err != nil {
		return nil, nil, fmt.Errorf("save client certificate: %w", err)
	}
	return crt, key, nil
}
