package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Options tune Load.
type Options struct {
	// ImageKnown reports whether an image reference (an alias or a
	// fingerprint prefix) that is not an [image.*] of the set is in the local
	// image store. When nil, such a reference is accepted if it looks like
	// an alias ("debian/12", "ci") or a fingerprint prefix (12 to 64 hex
	// digits); whether it exists is then the runner's problem.
	ImageKnown func(ref string) bool
	// MaxFileSize caps each spec file, in bytes; 0 means
	// DefaultMaxFileSize (1 MiB). A larger file is a problem, and is
	// not read past the limit.
	MaxFileSize int64
}

// Version is the spec language version this package reads.
const Version = 1

var topKeys = []string{"version", "name", "storage", "image", "profile", "job", "container", "service"}

// Load reads, validates and resolves a spec set. paths are files or
// directories (a directory means its *.toml files, sorted by name); all
// files form one set. Any problem, in any file, makes Load return *Errors
// listing every problem found, and no Set.
func Load(paths []string, opts Options) (*Set, error) {
	if len(paths) == 0 {
		return nil, errors.New("no spec files given")
	}
	l := &loader{opts: opts, ps: &problems{}, defs: map[string]at{}}
	files := l.read(paths)
	if err := l.ps.err(); err != nil {
		// A file that does not parse leaves references into it dangling:
		// report every file's own problems beside it, but skip the checks
		// across files rather than report a cascade of false problems.
		l.decode(paths[0], files)
		return nil, l.ps.err()
	}
	set := l.build(paths[0], files)
	if err := l.ps.err(); err != nil {
		return nil, err
	}
	return set, nil
}

type loader struct {
	opts Options
	ps   *problems
	defs map[string]at // "job.test" -> where it was first defined

	images     map[string]*imageDef
	profiles   map[string]*layer
	jobs       []*layer
	containers []*layer
	services   map[string]*serviceDef

	expansion expansion // what expanding the jobs has cost so far
}

type imageDef struct {
	img  Image
	from *sv
	at   at
	f    *srcFile
}

// read expands directories, reads and parses every file.
func (l *loader) read(paths []string) []*srcFile {
	var names []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			l.ps.add(Problem{File: p, Msg: fmt.Sprintf("cannot read spec: %v", unwrapPathError(err))})
			continue
		}
		if !fi.IsDir() {
			names = append(names, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			l.ps.add(Problem{File: p, Msg: fmt.Sprintf("cannot read spec directory: %v", unwrapPathError(err))})
			continue
		}
		n := 0
		for _, e := range entries { // ReadDir sorts by name
			if strings.HasSuffix(e.Name(), ".toml") && !e.IsDir() {
				names = append(names, filepath.Join(p, e.Name()))
				n++
			}
		}
		if n == 0 {
			l.ps.add(Problem{File: p, Msg: "no *.toml files in this directory"})
		}
	}
	var files []*srcFile
	seen := map[string]bool{}
	for _, name := range names {
		abs, err := filepath.Abs(name)
		if err != nil {
			l.ps.add(Problem{File: name, Msg: fmt.Sprintf("cannot resolve path: %v", err)})
			continue
		}
		if seen[abs] { // named twice (a directory and a file in it): one file
			continue
		}
		seen[abs] = true
		if f := l.parse(name, abs, len(files)); f != nil {
			files = append(files, f)
		}
	}
	return files
}

// parse reads and parses one file, within the limits: the decoder sees no
// more than MaxFileSize bytes, and nothing nested deeper than MaxDepth.
func (l *loader) parse(name, abs string, index int) *srcFile {
	src, p := readCapped(name, l.opts.maxFileSize())
	if p != nil {
		l.ps.add(*p)
		return nil
	}
	if where, ok := scanDepth(src, MaxDepth); !ok {
		l.ps.add(Problem{
			File: name, Line: where.line, Col: where.col, Limit: LimitDepth,
			Msg:  fmt.Sprintf("nested deeper than the limit of %d levels (tables, inline tables, arrays and dotted keys)", MaxDepth),
			Hint: "write [table] headers instead of nesting inline tables",
		})
		return nil
	}
	f := &srcFile{name: name, abs: abs, dir: filepath.Dir(abs), index: index, src: src}
	if err := tomlDecode(src, &f.data); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			l.ps.add(Problem{File: name, Line: pe.Position.Line, Col: errorCol(src, pe.Position), Msg: "syntax error: " + pe.Message})
		} else {
			l.ps.add(Problem{File: name, Msg: fmt.Sprintf("syntax error: %v", err)})
		}
		return nil
	}
	f.pos = scanPositions(src)
	return f
}

// errorCol recomputes a parse error's column from its byte offset
// (toml v1.6 puts an error at the start of a line at the end of the previous one).
func errorCol(src string, p toml.Position) int {
	if p.Start < 0 || p.Start > len(src) {
		return p.Col
	}
	bol := strings.LastIndexByte(src[:p.Start], '\n') + 1
	return utf8.RuneCountInString(src[bol:p.Start]) + 1
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// decode decodes every file into one set, checking what each file says on
// its own (and definitions named twice).
func (l *loader) decode(first string, files []*srcFile) *Set {
	set := &Set{Name: defaultName(first), Storage: Storage{Driver: "auto"}}
	l.images = map[string]*imageDef{}
	l.profiles = map[string]*layer{}
	l.services = map[string]*serviceDef{}
	var nameAt *sv
	storageAt := (*at)(nil)
	for _, f := range files {
		set.Files = append(set.Files, f.abs)
		d := &decoder{f: f, ps: l.ps}
		d.each(f.data, "", topKeys, func(k string, v any, p string) {
			switch k {
			case "version":
				if n, ok := v.(int64); !ok {
					d.wrongType(p, "an integer", v)
				} else if n != Version {
					d.problem(p, fmt.Sprintf("this stint reads version = %d", Version), "unsupported spec version %d", n)
				}
			case "name":
				s, ok := d.str(v, p)
				switch {
				case !ok:
				case !nameRE.MatchString(s.V):
					d.problem(p, "letters, digits, - and _, at most 63", "bad set name %q", s.V)
				case nameAt != nil && nameAt.V != s.V:
					d.problem(p, "", "set name %q differs from %q at %s", s.V, nameAt.V, place(nameAt.At))
				default:
					nameAt = &s
					set.Name = s.V
					set.Named = true
				}
			case "storage":
				a := d.at(p)
				if storageAt != nil {
					d.problem(p, "", "[storage] is already defined at %s", place(*storageAt))
					return
				}
				storageAt = &a
				set.Storage = d.storage(v, p)
			default:
				l.named(d, k, v, p)
			}
		})
	}
	return set
}

// build decodes the files into one set, then checks and resolves what
// refers across them: image references, profiles, matrices.
func (l *loader) build(first string, files []*srcFile) *Set {
	set := l.decode(first, files)
	l.checkImages()
	set.Images = []Image{}
	for _, def := range l.sortedImages() {
		set.Images = append(set.Images, def.img)
	}
	set.Profiles = []Profile{}
	for _, p := range sortLayers(mapValues(l.profiles)) {
		set.Profiles = append(set.Profiles, l.profile(p))
	}
	set.Services = l.checkServices()
	set.Jobs = []Job{}
	total := uint64(0)
	for _, j := range sortLayers(l.jobs) {
		if n, _ := variantCount(j.matrix); n <= MaxVariants {
			total += n
		}
		if total > MaxJobs {
			l.ps.add(Problem{
				File: j.At.File, Line: j.At.Line, Col: j.At.Col, Path: "job." + j.name, Limit: LimitJobs,
				Msg:  fmt.Sprintf("the set expands to more than %d jobs here (matrix variants included), the limit per set", MaxJobs),
				Hint: "split the set",
			})
			break
		}
		set.Jobs = append(set.Jobs, l.expandJob(j)...)
	}
	set.Containers = []Container{}
	for _, c := range sortLayers(l.containers) {
		set.Containers = append(set.Containers, l.container(c))
	}
	return set
}

// named decodes the [kind.NAME] tables of one file.
func (l *loader) named(d *decoder, kind string, v any, p string) {
	m, ok := d.table(v, p)
	if !ok {
		return
	}
	d.each(m, p, nil, func(name string, v any, np string) {
		a := d.at(np)
		if !nameRE.MatchString(name) {
			d.problem(np, "letters, digits, - and _, at most 63", "bad %s name %q", kind, name)
			return
		}
		if first, dup := l.defs[np]; dup {
			d.problem(np, "", "%s %q is already defined at %s", kind, name, place(first))
			return
		}
		l.defs[np] = a
		switch kind {
		case "image":
			img, from := d.decodeImage(name, v, np)
			img.Pos = Pos{File: d.f.abs, Line: a.Line, Col: a.Col}
			l.images[name] = &imageDef{img: img, from: from, at: a, f: d.f}
		case "profile":
			l.profiles[name] = d.decodeLayer(kind, name, v, np)
		case "job":
			l.jobs = append(l.jobs, d.decodeLayer(kind, name, v, np))
		case "container":
			l.containers = append(l.containers, d.decodeLayer(kind, name, v, np))
		case "service":
			l.services[name] = d.decodeService(name, v, np)
		}
	})
}

// place renders where something was defined, for "already defined at".
func place(a at) string {
	if a.Line == 0 {
		return a.File
	}
	return fmt.Sprintf("%s:%d:%d", a.File, a.Line, a.Col)
}

var badNameChars = lazyRE(`[^A-Za-z0-9_-]+`)

// defaultName is the set's name when no file says: the directory's name.
func defaultName(first string) string {
	abs, err := filepath.Abs(first)
	if err != nil {
		abs = first
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		abs = filepath.Dir(abs)
	}
	n := strings.Trim(badNameChars.ReplaceAllString(filepath.Base(abs), "-"), "-_")
	if n == "" {
		n = "default"
	}
	return n
}

// checkImages checks `from` references: known, and without a loop.
func (l *loader) checkImages() {
	for _, def := range l.sortedImages() {
		if def.from == nil {
			continue
		}
		l.imageRef(*def.from)
		chain := []string{def.img.Name}
		for cur := def; cur.from != nil; {
			next, ok := l.images[cur.from.V]
			if !ok {
				break
			}
			chain = append(chain, next.img.Name)
			if next.img.Name == def.img.Name {
				l.ps.addf(def.from.At, "", "image derives from itself: %s", strings.Join(chain, " -> "))
				break
			}
			if len(chain) > len(l.images)+1 {
				break // a loop not through def: reported for its own members
			}
			cur = next
		}
	}
}

// imageRef checks a reference to an image: an [image.*] of the set, or an
// image of the local store. It returns the reference to use: an
// "oci-layout:" directory resolved against its spec file's directory.
func (l *loader) imageRef(ref sv) string {
	if strings.HasPrefix(ref.V, layoutPrefix) {
		dir, _ := filepath.Abs(filepath.Dir(ref.At.File))
		out, err := LayoutRef(ref.V, dir)
		if err != nil {
			l.ps.addf(ref.At, "", "%v", err)
		}
		return out
	}
	if _, ok := l.images[ref.V]; ok {
		return ref.V
	}
	names := make([]string, 0, len(l.images))
	for n := range l.images {
		names = append(names, n)
	}
	if ref.V == "" || !aliasRE.MatchString(ref.V) && !fingerprintRE.MatchString(ref.V) {
		l.ps.addf(ref.At, "an [image.*] name, an alias or a fingerprint prefix (12+ hex digits)", "bad image reference %q", ref.V)
		return ref.V
	}
	if l.opts.ImageKnown != nil && !l.opts.ImageKnown(ref.V) {
		l.ps.addf(ref.At, suggest(ref.V, names), "unknown image %q: not an [image.*] of this set nor in the local image store", ref.V)
	}
	return ref.V
}

func (l *loader) sortedImages() []*imageDef {
	out := mapValues(l.images)
	sort.Slice(out, func(i, j int) bool { return before(out[i].f, out[i].at, out[j].f, out[j].at) })
	return out
}

func mapValues[V any](m map[string]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// sortLayers orders definitions as written: by file, then line.
func sortLayers(ls []*layer) []*layer {
	out := append([]*layer(nil), ls...)
	sort.Slice(out, func(i, j int) bool { return before(out[i].f, out[i].At, out[j].f, out[j].At) })
	return out
}

func before(fa *srcFile, a at, fb *srcFile, b at) bool {
	if fa.index != fb.index {
		return fa.index < fb.index
	}
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Col < b.Col
}
