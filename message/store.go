package message

import (
	"context"
	"errors"
	"time"
)

// DedupStore makes sends idempotent on (sender, client_msg_id) and recalls
// on the recalled message: a key is claimed atomically before anything is
// produced, completed with the resulting message afterwards, or released
// when the produce failed. A pending claim expires after its ttl, so a
// crashed sender does not block the key forever.
type DedupStore interface {
	// Claim atomically claims key until now+ttl and returns a token for
	// Complete and Release. When the key was completed before, it returns
	// the stored message instead (Original set, no token). While another
	// unexpired claim holds the key it returns ErrClaimPending.
	Claim(ctx context.Context, key string, now time.Time, ttl time.Duration) (Claim, error)
	// Complete stores m as the key's result (durably: a retry after a
	// restart must still find it). It fails with ErrClaimLost when token
	// no longer holds the claim.
	Complete(ctx context.Context, key, token string, m Message) error
	// Release drops the pending claim held by token, so a retry may send
	// again. Releasing a lost or completed claim does nothing.
	Release(ctx context.Context, key, token string) error
}

// Claim is the result of DedupStore.Claim: either a token (the caller now
// owns the key) or the original message of an earlier completed claim.
type Claim struct {
	Token    string
	Original *Message
}

var (
	// ErrClaimPending: another send holds the key and has not finished.
	ErrClaimPending = errors.New("message: dedup claim pending")
	// ErrClaimLost: the claim expired and someone else took the key.
	ErrClaimLost = errors.New("message: dedup claim lost")
)

// SeqLeaser records per-conversation high-water marks durably. Lease is
// the only way to raise a mark and must be atomic and durable before it
// returns (a synced Pebble write, a Redis INCRBY on a persistent instance,
// a Cassandra lightweight transaction): the seqs of the granted block are
// handed out from memory afterwards, and after any restart or loss
// allocation resumes above the recorded mark, never backwards, never twice.
type SeqLeaser interface {
	// Lease raises conversationID's mark by block and returns the new
	// mark hi: the caller owns seqs hi-block+1 .. hi.
	Lease(ctx context.Context, conversationID string, block int64) (hi int64, err error)
	// Mark returns the recorded mark (0 if none).
	Mark(ctx context.Context, conversationID string) (int64, error)
}
