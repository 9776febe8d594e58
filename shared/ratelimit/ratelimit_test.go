package ratelimit

import (
	"context"
	"testing"
)

func TestLocalLimitsEachKeySeparately(t *testing.T) {
	l := PerMinute(2)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if ok, _ := l.Allow(ctx, "a"); !ok {
			t.Fatalf("call %d within burst refused", i)
		}
	}
	if ok, _ := l.Allow(ctx, "a"); ok {
		t.Fatal("third call in a minute allowed")
	}
	if ok, _ := l.Allow(ctx, "b"); !ok {
		t.Fatal("another key must have its own budget")
	}
}
