package main

import (
	"math/bits"
	"sort"
	"time"
)

// hist is a log-linear latency histogram in microseconds: exact below 128 µs,
// then 128 buckets per power of two (under 0.8% error). Workers ship it as
// JSON and the parent merges them, so percentiles cover every sample of every
// process rather than an average of per-worker percentiles.
type hist struct {
	N       uint64         `json:"n"`
	SumUS   uint64         `json:"sum_us"`
	MinUS   int64          `json:"min_us"`
	MaxUS   int64          `json:"max_us"`
	Buckets map[int]uint64 `json:"b"`
}

func newHist() *hist { return &hist{Buckets: map[int]uint64{}} }

const subBuckets = 128

func bucketOf(us int64) int {
	if us < subBuckets {
		if us < 0 {
			return 0
		}
		return int(us)
	}
	e := bits.Len64(uint64(us)) - 8 // us>>e is in [128, 256)
	return subBuckets + e*subBuckets + int(us>>e) - subBuckets
}

// bucketHigh is the largest value that falls into bucket i.
func bucketHigh(i int) int64 {
	if i < subBuckets {
		return int64(i)
	}
	e := (i - subBuckets) / subBuckets
	m := int64((i-subBuckets)%subBuckets + subBuckets)
	return ((m + 1) << e) - 1
}

func (h *hist) add(d time.Duration) { h.addUS(d.Microseconds()) }

func (h *hist) addUS(us int64) {
	if us < 0 {
		// Clocks of one machine; a negative span is a clock step. Count it
		// as zero rather than dropping it, so counts stay exact.
		us = 0
	}
	if h.N == 0 || us < h.MinUS {
		h.MinUS = us
	}
	if us > h.MaxUS {
		h.MaxUS = us
	}
	h.N++
	h.SumUS += uint64(us)
	h.Buckets[bucketOf(us)]++
}

func (h *hist) merge(o *hist) {
	if o == nil || o.N == 0 {
		return
	}
	if h.N == 0 || o.MinUS < h.MinUS {
		h.MinUS = o.MinUS
	}
	if o.MaxUS > h.MaxUS {
		h.MaxUS = o.MaxUS
	}
	h.N += o.N
	h.SumUS += o.SumUS
	for k, v := range o.Buckets {
		h.Buckets[k] += v
	}
}

// quantile returns the value at q (0..1), never above the true maximum.
func (h *hist) quantile(q float64) int64 {
	if h.N == 0 {
		return 0
	}
	keys := make([]int, 0, len(h.Buckets))
	for k := range h.Buckets {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	rank := uint64(q*float64(h.N) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for _, k := range keys {
		seen += h.Buckets[k]
		if seen >= rank {
			v := bucketHigh(k)
			if v > h.MaxUS {
				v = h.MaxUS
			}
			if v < h.MinUS {
				v = h.MinUS
			}
			return v
		}
	}
	return h.MaxUS
}

// latency is a histogram's summary in milliseconds, as reports print it.
type latency struct {
	N     uint64  `json:"n"`
	MinMS float64 `json:"min_ms"`
	P50MS float64 `json:"p50_ms"`
	P90MS float64 `json:"p90_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
	AvgMS float64 `json:"avg_ms"`
}

func (h *hist) summary() latency {
	if h == nil || h.N == 0 {
		return latency{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return latency{
		N: h.N, MinMS: ms(h.MinUS), MaxMS: ms(h.MaxUS), AvgMS: float64(h.SumUS) / float64(h.N) / 1000,
		P50MS: ms(h.quantile(0.50)), P90MS: ms(h.quantile(0.90)), P99MS: ms(h.quantile(0.99)),
	}
}
