package lifecycle

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
)

func TestStoppedTellsASignalFromAFailure(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, true},
		{"signal", Signal{syscall.SIGTERM}, true},
		{"wrapped signal", fmt.Errorf("run: %w", Signal{syscall.SIGINT}), true},
		{"failure", errors.New("kafka: dial failed"), false},
		{"failure that looks like a signal", errors.New("received terminated"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Stopped(c.err); got != c.want {
				t.Fatalf("Stopped(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}
