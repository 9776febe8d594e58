package grpcx

import (
	"math"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// Timestamp converts t for the wire: the zero time is an absent (nil)
// timestamp.
func Timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// Time converts a wire timestamp back, in UTC: an absent one is the zero
// time.
func Time(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime().UTC()
}

// Limit32 converts a page limit for an int32 field, clamping instead of
// wrapping, so an out-of-range limit stays out of range (the server
// refuses it).
func Limit32(n int) int32 {
	switch {
	case n > math.MaxInt32:
		return math.MaxInt32
	case n < math.MinInt32:
		return math.MinInt32
	}
	return int32(n)
}
