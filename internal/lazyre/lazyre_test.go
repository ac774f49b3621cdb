package lazyre

import "testing"

func TestLazy(t *testing.T) {
	for _, tc := range []struct {
		expr, in string
		match    bool
	}{
		{`^[a-z]{0,3}$`, "abc", true},
		{`^[a-z]{0,3}$`, "abcd", false},
		{`^x+$`, "", false},
	} {
		if got := New(tc.expr).MatchString(tc.in); got != tc.match {
			t.Errorf("%s on %q: %v, want %v", tc.expr, tc.in, got, tc.match)
		}
	}
	re := New(`([0-9]+)-([a-z]+)`)
	if m := re.FindStringSubmatch("x 12-ab y"); len(m) != 3 || m[1] != "12" || m[2] != "ab" {
		t.Errorf("submatch: %q", m)
	}
	if got := New(`[^a-z]+`).ReplaceAllString("a.b--c", "-"); got != "a-b-c" {
		t.Errorf("replace: %q", got)
	}
}

func TestBadExpressionPanicsOnUse(t *testing.T) {
	re := New(`(`) // no panic yet
	defer func() {
		if recover() == nil {
			t.Fatal("a bad expression did not panic on first use")
		}
	}()
	re.MatchString("x")
}
