package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// median of xs (NaN for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// percentile p (0-100) of durations, nearest rank as the Python side does:
// index round(p/100 × (n-1)) of the sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Round(p / 100 * float64(len(sorted)-1)))
	return sorted[min(i, len(sorted)-1)]
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

// spread renders "median (min–max)" of xs formatted by f, or just the
// median for one sample.
func spread(xs []float64, f func(float64) string) string {
	if len(xs) <= 1 {
		return f(median(xs))
	}
	return fmt.Sprintf("%s (%s–%s)", f(median(xs)), f(slices.Min(xs)), f(slices.Max(xs)))
}

// commas formats x rounded to an integer with thousands separators.
func commas(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "n/a"
	}
	s := strconv.FormatInt(int64(math.Round(math.Abs(x))), 10)
	var b strings.Builder
	if x < 0 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtRate(x float64) string { return commas(x) + "/s" }
func fmtUS(x float64) string   { return fmt.Sprintf("%.1f µs", x) }
func fmtMS(x float64) string   { return fmt.Sprintf("%.1f ms", x) }

// fmtMSFine is fmtMS for figures that may be well below a millisecond.
func fmtMSFine(x float64) string {
	if x < 1 {
		return fmt.Sprintf("%.1f µs", x*1e3)
	}
	return fmtMS(x)
}
func fmtX(x float64) string   { return fmt.Sprintf("%.2f×", x) }
func fmtMiB(x float64) string { return fmt.Sprintf("%.1f MiB", x) }
