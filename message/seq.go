package message

import (
	"context"
	"fmt"
	"sync"
)

// SeqAllocator hands out per-conversation seqs: strictly increasing, never
// twice, never backwards, also across restarts.
type SeqAllocator interface {
	// Next returns the next seq of conversationID.
	Next(ctx context.Context, conversationID string) (int64, error)
	// Last returns a seq at or above every seq handed out so far in
	// conversationID and below every seq Next will hand out (0 if none).
	Last(ctx context.Context, conversationID string) (int64, error)
}

// DefaultSeqBlock is how many seqs one lease covers.
const DefaultSeqBlock = 1000

// LeasedAllocator counts in memory within blocks leased from a SeqLeaser.
// A restart loses at most the unused rest of each block (seqs are skipped,
// never reused).
type LeasedAllocator struct {
	leaser SeqLeaser
	block  int64

	mu    sync.Mutex
	convs map[string]*convSeq
}

type convSeq struct {
	mu     sync.Mutex
	loaded bool
	next   int64 // next seq to hand out
	hi     int64 // last seq of the leased block
}

var _ SeqAllocator = (*LeasedAllocator)(nil)

// NewLeasedAllocator returns an allocator leasing blocks of block seqs
// (DefaultSeqBlock when block <= 0).
func NewLeasedAllocator(leaser SeqLeaser, block int64) *LeasedAllocator {
	if block <= 0 {
		block = DefaultSeqBlock
	}
	return &LeasedAllocator{leaser: leaser, block: block, convs: map[string]*convSeq{}}
}

func (a *LeasedAllocator) conv(id string) *convSeq {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.convs[id]
	if !ok {
		c = &convSeq{}
		a.convs[id] = c
	}
	return c
}

// Next implements SeqAllocator.
func (a *LeasedAllocator) Next(ctx context.Context, conversationID string) (int64, error) {
	c := a.conv(conversationID)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loaded || c.next > c.hi {
		hi, err := a.leaser.Lease(ctx, conversationID, a.block)
		if err != nil {
			return 0, fmt.Errorf("lease seq block for %s: %w", conversationID, err)
		}
		lo := hi - a.block + 1
		if c.loaded && lo < c.next {
			// The leaser went backwards (its store lost data): never
			// follow it below what we handed out.
			return 0, fmt.Errorf("seq lease for %s went backwards: got %d..%d after %d", conversationID, lo, hi, c.next-1)
		}
		c.next, c.hi, c.loaded = lo, hi, true
	}
	s := c.next
	c.next++
	return s, nil
}

// Last implements SeqAllocator. For a conversation this process has not
// allocated in yet, it is the recorded mark: Next resumes above it.
func (a *LeasedAllocator) Last(ctx context.Context, conversationID string) (int64, error) {
	c := a.conv(conversationID)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded {
		return c.next - 1, nil
	}
	return a.leaser.Mark(ctx, conversationID)
}
