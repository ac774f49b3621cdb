package mountinfo

import (
	"os"
	"path/filepath"
	"testing"
)

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:               "/plain",
		`/with\040space`:       "/with space",
		`/tab\011and\134slash`: "/tab\tand\\slash",
		`/short\04`:            `/short\04`,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// The root is a mount point of every namespace, and beneath "/" every
// point is listed, deepest (longest) first.
func TestBeneathRoot(t *testing.T) {
	under, err := Beneath("/")
	if err != nil {
		t.Fatal(err)
	}
	if len(under) == 0 || under[len(under)-1] != "/" {
		t.Fatalf("Beneath(/) = %q, want it to end with /", under)
	}
	for i := 1; i < len(under); i++ {
		if len(under[i]) > len(under[i-1]) {
			t.Fatalf("not deepest first: %q before %q", under[i-1], under[i])
		}
	}
}

func TestSameMount(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		paths []string
		want  bool
	}{
		{[]string{dir, sub}, true},
		{[]string{sub}, true},
		{[]string{dir, "/proc"}, false}, // proc is a mount of its own
		{[]string{dir, filepath.Join(dir, "missing")}, false},
		{nil, false},
	} {
		if got := SameMount(tc.paths...); got != tc.want {
			t.Errorf("SameMount(%q) = %v, want %v", tc.paths, got, tc.want)
		}
	}
}
