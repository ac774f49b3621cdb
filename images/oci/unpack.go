package oci

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/stintdev/stint/images"
)

// unpack applies the layers of m, in order, into rootfs. Each layer's
// compressed stream is checked against its descriptor's size and digest,
// and its uncompressed stream against the config's diff_id; a mismatch
// fails the pull (the caller discards rootfs).
func unpack(ctx context.Context, img v1.Image, m *v1.Manifest, cfg *v1.ConfigFile, rootfs string, o Options) error {
	a, err := images.NewLayerApplier(rootfs, images.UnpackOptions{SkipDevices: o.SkipDevices})
	if err != nil {
		return err
	}
	defer a.Close()
	for i, desc := range m.Layers {
		if err := applyLayer(ctx, a, img, desc, cfg.RootFS.DiffIDs[i], o.Progress); err != nil {
			return fmt.Errorf("layer %d %s: %w", i+1, desc.Digest, err)
		}
	}
	return nil
}

func applyLayer(ctx context.Context, a *images.LayerApplier, img v1.Image, desc v1.Descriptor, diffID v1.Hash, progress func(string, int64, int64)) error {
	l, err := img.LayerByDigest(desc.Digest)
	if err != nil {
		return fetchErr(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fetchErr(err)
	}
	defer rc.Close()
	v := &verifier{r: rc, h: sha256.New(), size: desc.Size, want: desc.Digest, progress: progress}
	br := bufio.NewReaderSize(v, 64<<10)
	head, _ := br.Peek(4)
	var ur io.Reader = br
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return verifyFirst(v, fmt.Errorf("%w: gzip: %v", images.ErrBadResponse, err))
		}
		defer zr.Close()
		ur = zr
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return verifyFirst(v, fmt.Errorf("%w: zstd: %v", images.ErrBadResponse, err))
		}
		defer zr.Close()
		ur = zr
	}
	dh := sha256.New()
	tee := io.TeeReader(ur, dh)
	if err := a.Apply(ctx, tee); err != nil {
		return verifyFirst(v, err)
	}
	// The rest of the streams (tar padding): the digests cover them.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return verifyFirst(v, err)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return err
	}
	if !v.done {
		return fmt.Errorf("%w: stream not verified", images.ErrVerify)
	}
	if got := "sha256:" + hex.EncodeToString(dh.Sum(nil)); got != diffID.String() {
		return &images.VerifyError{Item: "layer " + desc.Digest.String(), What: "diff_id", Want: diffID.String(), Got: got}
	}
	return nil
}

// verifyFirst reports a failed download as such rather than as what the
// corrupt bytes made the decompressor or tar reader say: it drains the
// blob, and a size or digest mismatch wins over err.
func verifyFirst(v *verifier, err error) error {
	if errors.Is(err, images.ErrVerify) || errors.Is(err, context.Canceled) || errors.Is(err, images.ErrTimeout) || errors.Is(err, images.ErrUnsafeEntry) {
		return err
	}
	if _, derr := io.Copy(io.Discard, v); derr != nil && errors.Is(derr, images.ErrVerify) {
		return derr
	}
	return err
}

// verifier checks a blob's size and sha256 as it is read: it fails as soon
// as there is more than the size, and at the end on a short or wrong blob.
type verifier struct {
	r        io.Reader
	h        hash.Hash
	n, size  int64
	want     v1.Hash
	done     bool // verified to the end
	progress func(string, int64, int64)
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.progress != nil && n > 0 {
		v.progress(v.want.String(), v.n, v.size)
	}
	item := "layer " + v.want.String()
	if v.n > v.size {
		return n, &images.VerifyError{Item: item, What: "size", Want: fmt.Sprint(v.size), Got: "more"}
	}
	if err == nil {
		return n, nil
	}
	// At the end, or an error from below (go-containerregistry reports its
	// own digest check as an untyped error at the end): judge by the bytes.
	got := "sha256:" + hex.EncodeToString(v.h.Sum(nil))
	switch {
	case v.n < v.size && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		return n, &images.VerifyError{Item: item, What: "size", Want: fmt.Sprint(v.size), Got: fmt.Sprint(v.n)}
	case v.n == v.size && got != v.want.String():
		return n, &images.VerifyError{Item: item, What: "digest", Want: v.want.String(), Got: got}
	case v.n == v.size && errors.Is(err, io.EOF):
		v.done = true
	}
	return n, err
}
