package grpcx

import (
	"math"
	"testing"
	"time"
)

func TestTimestampKeepsZeroAbsentAndComesBackInUTC(t *testing.T) {
	if Timestamp(time.Time{}) != nil {
		t.Fatal("zero time should be an absent timestamp")
	}
	if !Time(nil).IsZero() {
		t.Fatal("absent timestamp should be the zero time")
	}
	in := time.Date(2030, 5, 6, 7, 8, 9, 10, time.FixedZone("x", 3600))
	out := Time(Timestamp(in))
	if !out.Equal(in) || out.Location() != time.UTC {
		t.Fatalf("round trip %v -> %v", in, out)
	}
}

func TestLimit32ClampsInsteadOfWrapping(t *testing.T) {
	for _, c := range []struct {
		in   int
		want int32
	}{{0, 0}, {50, 50}, {-1, -1}, {math.MaxInt32 + 1, math.MaxInt32}, {math.MinInt32 - 1, math.MinInt32}} {
		if got := Limit32(c.in); got != c.want {
			t.Errorf("Limit32(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}
