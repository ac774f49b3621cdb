package simplestreams

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/internal/lazyre"
	"golang.org/x/sys/unix"
)

// Handler serves a local image store as a simplestreams remote, read-only:
//
//	GET /streams/v1/index.json
//	GET /streams/v1/images.json
//	GET /images/<fingerprint>/<file>     the image's files, named as `lxc image export` names them
//
// Each image is one product whose aliases are the image's aliases and
// whose one version is keyed by its creation time as a YYYYMMDD_HH:MM
// serial (LXD reads the date from it). A unified image is a
// lxd_combined.tar.gz item; a split one is lxd.tar.xz with squashfs or
// root.tar.xz, the metadata item carrying the image's fingerprint as
// combined_squashfs_sha256 or combined_rootxz_sha256. These names are the
// format's, whatever the real compression (LXD sniffs the content).
//
// Only those paths are answered: a request is matched against them
// exactly, as sent (an encoded character such as %2f matches nothing), and
// a file is opened beneath the store directory with openat2(RESOLVE_BENEATH
// | RESOLVE_NO_SYMLINKS), as a regular file, so nothing outside the store
// (a planted symlink, a path with "..") is ever served. The sha256 of a
// split image's files is computed on the first request and cached.
type Handler struct {
	store *images.Store
	mu    sync.Mutex
	sums  map[string]fileSum // store file name → its sha256, while size and mtime hold
}

type fileSum struct {
	size  int64
	mtime int64
	sum   string
}

// NewHandler returns a Handler serving s.
func NewHandler(s *images.Store) *Handler {
	return &Handler{store: s, sums: map[string]fileSum{}}
}

var filePathRE = lazyre.New(`^/images/([0-9a-f]{64})/([A-Za-z0-9._-]+)$`)

// ServeHTTP answers the paths above; anything else is 404, a method other
// than GET or HEAD 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "read-only", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.EscapedPath()
	if r.URL.RawQuery != "" && p != "/streams/v1/index.json" && p != "/streams/v1/images.json" {
		http.NotFound(w, r)
		return
	}
	switch p {
	case "/streams/v1/index.json", "/streams/v1/images.json":
		ps, err := h.products()
		if err != nil {
			http.Error(w, "image store unavailable", http.StatusInternalServerError)
			return
		}
		var doc any = ps
		if p == "/streams/v1/index.json" {
			doc = indexOf(ps)
		}
		data, _ := json.MarshalIndent(doc, "", "  ")
		w.Header().Set("Content-Type", "application/json")
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(data)+"\n"))
		return
	}
	m := filePathRE.FindStringSubmatch(p)
	if m == nil {
		http.NotFound(w, r)
		return
	}
	h.serveFile(w, r, m[1], m[2])
}

// serveFile serves the file called name of the image fp, if it has one.
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, fp, name string) {
	img, err := h.store.Resolve(fp)
	if err != nil || img.Fingerprint != fp {
		http.NotFound(w, r)
		return
	}
	stored := ""
	for i, n := range img.ExportNames() {
		if n == name {
			stored = []string{fp, fp + ".rootfs"}[i]
		}
	}
	if stored == "" {
		http.NotFound(w, r)
		return
	}
	f, err := h.open(stored)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, _ := f.Stat()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// open opens a file directly in the store directory: beneath it, through
// no symlink, and only a regular file.
func (h *Handler) open(name string) (*os.File, error) {
	if strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return nil, fmt.Errorf("store file %q: not a plain name", name)
	}
	dir, err := unix.Open(h.store.Dir(), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	fd, err := unix.Openat2(dir, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, fmt.Errorf("open store file %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("store file %s: not a regular file", name)
	}
	return f, nil
}

// sum is the sha256 and size of a store file, cached.
func (h *Handler) sum(name string) (string, int64, error) {
	f, err := h.open(name)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	h.mu.Lock()
	c, ok := h.sums[name]
	h.mu.Unlock()
	if ok && c.size == st.Size() && c.mtime == st.ModTime().UnixNano() {
		return c.sum, c.size, nil
	}
	hs := sha256.New()
	if _, err := io.Copy(hs, f); err != nil {
		return "", 0, fmt.Errorf("hash store file %s: %w", name, err)
	}
	c = fileSum{size: st.Size(), mtime: st.ModTime().UnixNano(), sum: hex.EncodeToString(hs.Sum(nil))}
	h.mu.Lock()
	h.sums[name] = c
	h.mu.Unlock()
	return c.sum, c.size, nil
}

// products renders the store as a products file. An image whose files
// can't be read is left out.
func (h *Handler) products() (*Products, error) {
	imgs, err := h.store.List()
	if err != nil {
		return nil, err
	}
	ps := &Products{ContentID: "images", DataType: "image-downloads", Format: "products:1.0",
		Updated: time.Now().UTC().Format(time.RFC1123), Products: map[string]Product{}}
	for _, img := range imgs {
		items, err := h.items(img)
		if err != nil {
			continue
		}
		arch := debArch(img.Architecture)
		osName, release := img.Properties["os"], img.Properties["release"]
		if osName == "" {
			osName = "stint"
		}
		if release == "" {
			release = img.Fingerprint[:12]
		}
		created := img.Created
		if created.IsZero() {
			created = img.Uploaded
		}
		ps.Products[img.Fingerprint[:12]+":"+arch] = Product{
			Aliases:         strings.Join(img.Aliases, ","),
			Architecture:    arch,
			OperatingSystem: osName,
			Release:         release,
			ReleaseTitle:    release,
			Variant:         img.Properties["variant"],
			Versions:        map[string]Version{Serial(created): {Items: items}},
		}
	}
	return ps, nil
}

// items are the version items of img.
func (h *Handler) items(img *images.Image) (map[string]Item, error) {
	names := img.ExportNames()
	dir := "images/" + img.Fingerprint + "/"
	if !img.Split {
		// A unified image's sha256 is its fingerprint: no need to hash it.
		f, err := h.open(img.Fingerprint) // also checks the file is servable
		if err != nil {
			return nil, err
		}
		st, err := f.Stat()
		f.Close()
		if err != nil {
			return nil, err
		}
		size := st.Size()
		return map[string]Item{FileCombined: {FileType: FileCombined, Path: dir + names[0], SHA256: img.Fingerprint, Size: size}}, nil
	}
	msum, msize, err := h.sum(img.Fingerprint)
	if err != nil {
		return nil, err
	}
	rsum, rsize, err := h.sum(img.Fingerprint + ".rootfs")
	if err != nil {
		return nil, err
	}
	meta := Item{FileType: FileMeta, Path: dir + names[0], SHA256: msum, Size: msize}
	root := Item{Path: dir + names[1], SHA256: rsum, Size: rsize}
	if img.RootfsFormat == "squashfs" {
		meta.CombinedSquashfsSHA256, root.FileType = img.Fingerprint, FileSquashfs
	} else {
		meta.CombinedRootxzSHA256, meta.CombinedSHA256, root.FileType = img.Fingerprint, img.Fingerprint, FileRootTar
	}
	return map[string]Item{FileMeta: meta, root.FileType: root}, nil
}

// indexOf is the index naming ps.
func indexOf(ps *Products) *Index {
	names := make([]string, 0, len(ps.Products))
	for n := range ps.Products {
		names = append(names, n)
	}
	sort.Strings(names)
	return &Index{Format: "index:1.0", Updated: ps.Updated, Index: map[string]IndexEntry{
		"images": {DataType: "image-downloads", Path: "streams/v1/images.json", Format: "products:1.0", Updated: ps.Updated, Products: names},
	}}
}

// Serial is t as a version serial, YYYYMMDD_HH:MM in UTC, the form LXD
// requires.
func Serial(t time.Time) string { return t.UTC().Format("20060102_15:04") }

// debArch maps LXD's architecture names to the Debian ones the public
// image server uses (x86_64 → amd64); LXD accepts both.
func debArch(a string) string {
	switch a {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "armv7l":
		return "armhf"
	case "i686":
		return "i386"
	}
	return a
}

// Serve serves s as a simplestreams remote on l until ctx is done, with
// TLS when certFile and keyFile are given (LXD pulls only over HTTPS).
// It returns nil after ctx ends, or the server's error.
func Serve(ctx context.Context, s *images.Store, l net.Listener, certFile, keyFile string) error {
	if (certFile == "") != (keyFile == "") {
		return fmt.Errorf("serve images: %w: a TLS certificate needs its key, and a key its certificate", images.ErrInvalidRemote)
	}
	// ErrorLog: TLS handshakes clients give up (probes, untrusting
	// clients) are not the server's errors.
	srv := &http.Server{Handler: NewHandler(s), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	}()
	var err error
	if certFile != "" {
		err = srv.ServeTLS(l, certFile, keyFile)
	} else {
		err = srv.Serve(l)
	}
	if errors.Is(err, http.ErrServerClosed) && ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("serve images on %s: %w", l.Addr(), err)
}
