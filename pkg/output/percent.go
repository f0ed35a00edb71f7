package output

import (
	"math"
	"strconv"
)

// Percent renders an uptime for people: two decimals, rounded down, below
// 100, so that 99.999 never reads as 100% and 100 stays short.
func Percent(p float64) string {
	if p >= 100 {
		return "100%"
	}
	return strconv.FormatFloat(math.Floor(p*100)/100, 'f', 2, 64) + "%"
}
