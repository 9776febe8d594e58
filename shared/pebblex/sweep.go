package pebblex

import (
	"context"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// Sweeper defaults. Expired records only cost disk, so sweeping rarely is
// fine; the first sweep comes soon after start so a long-stopped data dir
// is cleaned without waiting a whole interval.
const (
	DefaultSweepInterval = 10 * time.Minute
	DefaultSweepDelay    = time.Minute
)

// SweepBatch is how many records a store's sweep deletes per Pebble
// batch, so a sweep never builds one huge batch or holds a store's locks
// for long.
const SweepBatch = 1000

// Sweeper calls Sweep once Delay after Run starts and then every
// Interval until the context ends. The embedded mode runs one per store
// whose records expire (the Redis backends leave that to key TTLs).
type Sweeper struct {
	// Name tells the sweeps apart in logs ("auth sessions", ...).
	Name string
	// Sweep deletes what is expired at now and says how many records it
	// removed.
	Sweep    func(ctx context.Context, now time.Time) (removed int, err error)
	Interval time.Duration // <= 0: DefaultSweepInterval
	Delay    time.Duration // <= 0: DefaultSweepDelay
	Logger   log.Logger    // nil: no logs
}

// Run sweeps until ctx ends, then returns nil. A failed sweep is logged
// and tried again at the next tick: what it left is still expired then.
func (s Sweeper) Run(ctx context.Context) error {
	interval, delay, logger := s.Interval, s.Delay, s.Logger
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	if delay <= 0 {
		delay = DefaultSweepDelay
	}
	if logger == nil {
		logger = log.NewNopLogger()
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := s.Sweep(ctx, time.Now())
		if err != nil && ctx.Err() == nil {
			_ = level.Warn(logger).Log("msg", "sweep failed", "sweep", s.Name, "removed", n, "err", err)
		} else {
			_ = level.Debug(logger).Log("msg", "swept expired records", "sweep", s.Name, "removed", n)
		}
		t.Reset(interval)
	}
}
