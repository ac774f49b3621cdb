package images

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// sniff names the format of a file from its first bytes: gzip, xz, zstd,
// bzip2, squashfs, or none (a plain tar). Names are never trusted.
func sniff(head []byte) (string, error) {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "gzip", nil
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return "xz", nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd", nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return "bzip2", nil
	case bytes.HasPrefix(head, []byte("hsqs")):
		return "squashfs", nil
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return "none", nil
	}
	return "", fmt.Errorf("%w: unknown format (not a tar, gzip, xz, zstd, bzip2 or squashfs)", ErrInvalidImage)
}

// decompress sniffs r and returns the decompressed stream and the format.
// squashfs is reported, not decompressed.
func decompress(r io.Reader) (io.ReadCloser, string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(512)
	format, err := sniff(head)
	if err != nil {
		return nil, "", err
	}
	switch format {
	case "gzip":
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", fmt.Errorf("%w: gzip: %v", ErrInvalidImage, err)
		}
		return zr, format, nil
	case "xz":
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, "", fmt.Errorf("%w: xz: %v", ErrInvalidImage, err)
		}
		return io.NopCloser(xr), format, nil
	case "zstd":
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, "", fmt.Errorf("%w: zstd: %v", ErrInvalidImage, err)
		}
		return zr.IOReadCloser(), format, nil
	case "bzip2":
		return io.NopCloser(bzip2.NewReader(br)), format, nil
	}
	return io.NopCloser(br), format, nil
}
