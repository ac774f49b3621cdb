package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"strings"
)

// entryKind is what a tar entry left at its path, as far as the rules care.
type entryKind uint8

const (
	kindDir entryKind = iota + 1
	kindSymlink
	kindOther // a file, hard link, device or fifo
)

// tarRules is the safety check for a root filesystem's tar stream, entry by
// entry, without a filesystem: it remembers what each path holds so far
// (tar semantics: a later entry replaces an earlier one). Import runs it
// over the whole stream to refuse a hostile image before storing it;
// ExtractTar runs the same rules before writing each entry, and the
// kernel's RESOLVE_BENEATH stays the last word there.
type tarRules struct {
	prefix string               // "rootfs" in a unified tarball, "" for a split rootfs
	kinds  map[string]entryKind // name under prefix → what is there now
}

func newTarRules(prefix string) *tarRules {
	return &tarRules{prefix: prefix, kinds: map[string]entryKind{}}
}

// next checks hdr and records it. It returns the entry's name under the
// prefix ("" for the root itself), a hard link's target under the prefix,
// and ok false for an entry outside the prefix (metadata.yaml, templates/),
// which the caller skips. A refused entry is an *UnsafeEntryError naming
// hdr.Name.
func (r *tarRules) next(hdr *tar.Header) (name, link string, ok bool, err error) {
	name, err = cleanName(hdr.Name)
	if err != nil {
		return "", "", false, err
	}
	if name, ok = r.strip(name); !ok {
		return "", "", false, nil
	}
	if name == "" {
		return "", "", true, nil // the root: the target directory itself
	}
	unsafe := func(reason string, args ...any) error {
		return &UnsafeEntryError{Entry: hdr.Name, Reason: fmt.Sprintf(reason, args...)}
	}
	if reason := r.parents(name, true); reason != "" {
		return "", "", false, unsafe("%s", reason)
	}
	kind := kindOther
	switch hdr.Typeflag {
	case tar.TypeDir:
		kind = kindDir
	case tar.TypeSymlink:
		kind = kindSymlink
	case tar.TypeReg, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	case tar.TypeXGlobalHeader:
		return name, "", true, nil
	case tar.TypeLink:
		target, lerr := cleanName(hdr.Linkname)
		var ue *UnsafeEntryError
		if errors.As(lerr, &ue) {
			return "", "", false, unsafe("hard link to %q: %s", hdr.Linkname, ue.Reason)
		}
		target, in := r.strip(target)
		switch {
		case !in:
			return "", "", false, unsafe("hard link to %q: outside %s/", hdr.Linkname, r.prefix)
		case target == "":
			return "", "", false, unsafe("hard link to %q: a directory", hdr.Linkname)
		}
		if reason := r.parents(target, false); reason != "" {
			return "", "", false, unsafe("hard link to %q: %s", hdr.Linkname, reason)
		}
		switch r.kinds[target] {
		case 0:
			return "", "", false, unsafe("hard link to %q: no such entry before it", hdr.Linkname)
		case kindSymlink:
			return "", "", false, unsafe("hard link to %q: a symlink", hdr.Linkname)
		case kindDir:
			return "", "", false, unsafe("hard link to %q: a directory", hdr.Linkname)
		}
		link = target
	default:
		return "", "", false, unsafe("unsupported entry type %q", string(hdr.Typeflag))
	}
	r.kinds[name] = kind
	return name, link, true, nil
}

// strip removes the prefix from a cleaned name; ok is false outside it.
func (r *tarRules) strip(name string) (string, bool) {
	if r.prefix == "" {
		return name, true
	}
	if name != r.prefix && !strings.HasPrefix(name, r.prefix+"/") {
		return "", false
	}
	return strings.TrimPrefix(strings.TrimPrefix(name, r.prefix), "/"), true
}

// parents checks the directories above name: none may be a symlink or a
// non-directory. Missing ones are made by extraction, so create records
// them as directories. It returns why name is refused, or "".
func (r *tarRules) parents(name string, create bool) string {
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		switch dir := name[:i]; r.kinds[dir] {
		case kindSymlink:
			return "path goes through a symlink"
		case kindOther:
			return "a parent is not a directory"
		case 0:
			if create {
				r.kinds[dir] = kindDir
			}
		}
	}
	return ""
}
