package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/stintdev/stint/runner"
)

// ImageServeCmd serves the image store as a simplestreams remote.
type ImageServeCmd struct {
	Listen  string `help:"Address to listen on." default:"127.0.0.1:8443"`
	TLSCert string `name:"tls-cert" help:"TLS certificate (PEM); LXD pulls only over HTTPS." type:"existingfile"`
	TLSKey  string `name:"tls-key" help:"TLS key (PEM) of the certificate." type:"existingfile"`
}

// Run serves until SIGINT or SIGTERM.
func (c *ImageServeCmd) Run(g *Globals) error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return withCode(ExitUsage, fmt.Errorf("serve images: --tls-cert and --tls-key go together"))
	}
	h, s, err := openImageStore(g)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return withCode(ExitHost, fmt.Errorf("serve images on %s: %w", c.Listen, err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	scheme := "http"
	if c.TLSCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(g.Stderr, "serving images on %s://%s\n", scheme, l.Addr())
	if err := runner.ServeImages(ctx, s, l, c.TLSCert, c.TLSKey); err != nil {
		return pullErr(fmt.Errorf("serve images on %s: %w", l.Addr(), err))
	}
	return nil
}
