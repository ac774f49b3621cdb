// Package plural writes counts with the right noun: "1 file", "3 files".
package plural

import "strconv"

// N is n and its noun, one for 1 and many otherwise (0 included).
func N(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
