package spec

import (
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Parsers for the spec's humane values. Each returns an error whose text is
// the "what is wrong" of a Problem.

// sizeUnits are the units ParseSize accepts (case-insensitive): SI and IEC.
var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

const sizeHint = `sizes look like "512MiB", "2GB", "1.5GiB" or a number of bytes`

// ParseSize parses a humane size ("512MiB", "2GB", "1.5GiB", "1048576")
// into bytes, rounding down. Single-letter units ("512M") are refused: they
// mean MiB to LXC but MB to most people.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("bad size %q", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("bad size %q", s)
	}
	v := math.Floor(f * mult)
	if v < 1 || v > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q out of range", s)
	}
	return int64(v), nil
}

const durationHint = `durations look like "90s", "10m" or "1h30m"`

// parseDuration parses a positive Go duration.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	return d, nil
}

const portHint = `ports look like "8080:80", "8080:80/udp" or "127.0.0.1:8080:80/tcp"`

// ParsePort parses "[hostip:]hostport:containerport[/tcp|/udp]".
func ParsePort(s string) (Port, error) {
	p := Port{Proto: "tcp"}
	bad := fmt.Errorf("bad port mapping %q", s)
	rest := s
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		p.Proto = rest[i+1:]
		rest = rest[:i]
		if p.Proto != "tcp" && p.Proto != "udp" {
			return Port{}, fmt.Errorf("bad protocol %q in port mapping %q (tcp or udp)", p.Proto, s)
		}
	}
	parts := strings.Split(rest, ":")
	switch len(parts) {
	case 2:
	case 3:
		ip, err := netip.ParseAddr(parts[0])
		if err != nil || !ip.Is4() {
			return Port{}, fmt.Errorf("bad host address %q in port mapping %q", parts[0], s)
		}
		p.HostIP = parts[0]
		parts = parts[1:]
	default:
		return Port{}, bad
	}
	var err error
	if p.HostPort, err = portNumber(parts[0]); err != nil {
		return Port{}, fmt.Errorf("bad host port in %q: %w", s, err)
	}
	if p.ContainerPort, err = portNumber(parts[1]); err != nil {
		return Port{}, fmt.Errorf("bad container port in %q: %w", s, err)
	}
	return p, nil
}

func portNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return n, nil
}

// parseIPv4 accepts an IPv4 address, optionally with a prefix length.
func parseIPv4(s string) error {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return fmt.Errorf("bad IPv4 address %q", s)
		}
		return nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return fmt.Errorf("bad IPv4 address %q", s)
	}
	return nil
}

var (
	// nameRE is what a job, container, profile, image or set name may be:
	// it ends up in LXC container names, host names and directory names.
	nameRE = lazyRE(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)
	// envRE is an environment variable or matrix key name.
	envRE = lazyRE(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// matrixValueRE keeps variant names usable as directory names.
	matrixValueRE = lazyRE(`^[A-Za-z0-9._+:@%-]+$`)
	// aliasRE and fingerprintRE are what an image reference outside the set
	// may look like when no image store is consulted.
	aliasRE       = lazyRE(`^[A-Za-z0-9][A-Za-z0-9._:/-]*$`)
	fingerprintRE = lazyRE(`^[0-9a-f]{12,64}$`)
	// pullSourceRE is an image source on a remote: REMOTE:ALIAS, or
	// oci-layout:/path[:tag].
	pullSourceRE = lazyRE(`^(oci-layout:/|[A-Za-z0-9][A-Za-z0-9._-]*:[^/\s])`)
	// bridgeRE is a Linux interface name.
	bridgeRE = lazyRE(`^[A-Za-z0-9_.-]{1,15}$`)
)

// suggest returns `did you mean "x"?` for the closest candidate within a
// small edit distance, or "" when nothing is close.
func suggest(got string, candidates []string) string {
	best, bestD := "", 3
	if len(got) <= 3 {
		bestD = 2
	}
	cs := append([]string(nil), candidates...)
	sort.Strings(cs)
	for _, c := range cs {
		if d := editDistance(strings.ToLower(got), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b, over bytes, with
// an adjacent transposition counting as one edit ("rnu" -> "run").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// keyHint is a did-you-mean for an unknown key, or the list of valid keys.
func keyHint(got string, valid []string) string {
	if s := suggest(got, valid); s != "" {
		return s
	}
	vs := append([]string(nil), valid...)
	sort.Strings(vs)
	return "valid keys: " + strings.Join(vs, ", ")
}
