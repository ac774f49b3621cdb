// Package images is stint's local image store: LXD-format images (unified or
// split tarballs), their fingerprints, aliases, metadata.yaml and templates,
// safe extraction (and OCI layers with whiteouts: LayerApplier), the offline
// builders (busybox, debootstrap), and the types of image remotes (Remote,
// Source). The remote protocols are subpackages: simplestreams (pull and
// serve) and oci (registries and OCI layouts).
//
// Layout under the store directory (<--root>/images):
//
//	index.json         the index of every image (atomic writes, renameio)
//	.lock              a flock taken by every mutation, so stint processes can share a store
//	                   (shared while a temporary is made, exclusive while Sweep looks)
//	<fingerprint>      the image (unified) or its metadata tarball (split), byte for byte as imported
//	<fingerprint>.rootfs  the rootfs of a split image, byte for byte as imported
//	.tmp-*             imports, pulls, builds and OCI unpacks in flight, each flocked by its maker
//	                   (TempFile, TempDir); removed on failure, and by Sweep (at Open) once
//	                   nobody holds it (a kill -9)
//	.busybox-sum.json  the busybox builder's input hash, by the binary's identity (dev, inode, size, mtime, ctime)
//
// Keeping the files as imported is what makes export byte-identical and the
// fingerprint stable: LXD's fingerprint is the sha256 of the unified tarball,
// or of the metadata tarball followed by the rootfs, exactly as they are.
//
// The package is pure Go (no cgo) and imports none of stint's runner,
// storage, net or cmd packages; a test checks both.
package images
