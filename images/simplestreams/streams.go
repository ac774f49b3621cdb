// Package simplestreams reads and serves LXD image remotes in the
// simplestreams format, the one LXD's public image server and `lxc remote
// add --protocol simplestreams` use.
//
// A remote is two JSON documents under its URL, and the files they name:
//
//	streams/v1/index.json    {"format": "index:1.0", "index": {"images": {"datatype": "image-downloads",
//	                          "path": "streams/v1/images.json", "products": [...]}}}
//	streams/v1/images.json   {"format": "products:1.0", "products": {"alpine:3.20:amd64:default": {
//	                          "aliases": "alpine/3.20,alpine/3.20/default", "arch": "amd64", "os": "Alpine",
//	                          "versions": {"20240601_13:00": {"items": {"lxd.tar.xz": {...}, ...}}}}}}
//
// An item has a path (joined onto the remote's URL), its sha256 and size;
// the metadata item also carries the image's fingerprint for each rootfs
// it pairs with (combined_squashfs_sha256, combined_rootxz_sha256).
//
// The Client picks a product by alias and architecture, the newest version
// that has an image LXD can use, downloads its files while checking each
// one's size and sha256 and the image's fingerprint, and imports the result
// into the local store. The Handler serves a local store in the same
// format, read-only, so another stint or LXD can pull from it.
package simplestreams

// Index is streams/v1/index.json.
type Index struct {
	Format  string                `json:"format"`
	Index   map[string]IndexEntry `json:"index"`
	Updated string                `json:"updated,omitempty"`
}

// IndexEntry is one entry of the index: a products file.
type IndexEntry struct {
	DataType string   `json:"datatype"`
	Path     string   `json:"path"`
	Format   string   `json:"format,omitempty"`
	Updated  string   `json:"updated,omitempty"`
	Products []string `json:"products"`
}

// Products is a products file (streams/v1/images.json).
type Products struct {
	ContentID string             `json:"content_id"`
	DataType  string             `json:"datatype"`
	Format    string             `json:"format"`
	Updated   string             `json:"updated,omitempty"`
	Products  map[string]Product `json:"products"`
}

// Product is one image line (an os, release, architecture and variant)
// with its versions.
type Product struct {
	Aliases         string             `json:"aliases"` // comma-separated
	Architecture    string             `json:"arch"`    // amd64, arm64, ... (or LXD's x86_64, aarch64)
	OperatingSystem string             `json:"os"`
	Release         string             `json:"release"`
	ReleaseCodename string             `json:"release_codename,omitempty"`
	ReleaseTitle    string             `json:"release_title"`
	Variant         string             `json:"variant,omitempty"`
	Requirements    map[string]string  `json:"requirements,omitempty"`
	Versions        map[string]Version `json:"versions"`
}

// Version is one build of a product, keyed by its serial (YYYYMMDD_HH:MM:
// LXD reads the creation date from the first 8 characters).
type Version struct {
	Items map[string]Item `json:"items"`
	Label string          `json:"label,omitempty"`
}

// Item is one file of a version.
type Item struct {
	FileType string `json:"ftype"` // lxd_combined.tar.gz, lxd.tar.xz, squashfs, root.tar.xz, ...
	Path     string `json:"path"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
	// On the metadata item (lxd.tar.xz): the fingerprint of the image it
	// makes with each rootfs.
	CombinedSHA256         string `json:"combined_sha256,omitempty"`
	CombinedRootxzSHA256   string `json:"combined_rootxz_sha256,omitempty"`
	CombinedSquashfsSHA256 string `json:"combined_squashfs_sha256,omitempty"`
}

// The file types this package reads and writes.
const (
	FileCombined = "lxd_combined.tar.gz" // a unified image (any compression, despite the name)
	FileMeta     = "lxd.tar.xz"          // a split image's metadata tarball
	FileSquashfs = "squashfs"            // a split image's rootfs (preferred)
	FileRootTar  = "root.tar.xz"         // a split image's rootfs as a tarball
)

// IndexPath is where a remote's index is, under its URL.
const IndexPath = "streams/v1/index.json"
