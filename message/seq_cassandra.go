package message

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/gocql/gocql"

	"github.com/beehive-im/beehive/shared/cassandra"
	"github.com/beehive-im/beehive/shared/errs"
)

// CQL of CassandraSeqLeaser (table seq_marks, migration 0050_message.cql).
const (
	cqlSeqMark        = `SELECT hi FROM seq_marks WHERE conversation_id = ?`
	cqlSeqMarkInsert  = `INSERT INTO seq_marks (conversation_id, hi) VALUES (?, ?) IF NOT EXISTS`
	cqlSeqMarkAdvance = `UPDATE seq_marks SET hi = ? WHERE conversation_id = ? IF hi = ?`
)

// Contention handling of CassandraSeqLeaser.Lease: a lost compare-and-set
// is retried with the mark the transaction saw, after a short jittered
// pause growing to seqLeaseMaxBackoff, at most seqLeaseAttempts times.
const (
	seqLeaseAttempts   = 64
	seqLeaseMinBackoff = time.Millisecond
	seqLeaseMaxBackoff = 50 * time.Millisecond
)

// CassandraSeqLeaser records seq high-water marks in the seq_marks table.
// Every Lease is one lightweight transaction (Paxos at SERIAL consistency,
// committed at the session's consistency, LOCAL_QUORUM by default): when
// it returns, the raised mark is durable and every later Lease, from any
// process in any data centre, sees it. Mark reads at SERIAL too, so it
// never misses a lease whose Paxos round was accepted but not yet
// committed everywhere.
//
// Errors are *errs.Error: unavailable for an outage (no host, a timeout,
// an LWT of unknown outcome — a retried Lease then skips that block,
// never reuses it), canceled/deadline_exceeded when ctx ended.
type CassandraSeqLeaser struct {
	s *gocql.Session
}

var _ SeqLeaser = (*CassandraSeqLeaser)(nil)

// NewCassandraSeqLeaser returns a leaser over session, whose keyspace
// holds seq_marks (`beehive migrate`).
func NewCassandraSeqLeaser(session *gocql.Session) *CassandraSeqLeaser {
	return &CassandraSeqLeaser{s: session}
}

// serialRead reads at SERIAL: the protocol accepts the serial levels as a
// read consistency, which completes any in-flight Paxos round first.
const serialRead = gocql.Consistency(gocql.Serial)

// Lease implements SeqLeaser.
func (l *CassandraSeqLeaser) Lease(ctx context.Context, conversationID string, block int64) (int64, error) {
	if block <= 0 {
		return 0, errs.Newf(errs.Internal, "seq lease block must be positive, got %d", block)
	}
	if err := ctx.Err(); err != nil {
		return 0, errs.As(err)
	}
	cur, exists, err := l.read(ctx, conversationID)
	if err != nil {
		return 0, err
	}
	backoff := seqLeaseMinBackoff
	for attempt := 0; attempt < seqLeaseAttempts; attempt++ {
		if cur > maxSeq-block {
			return 0, errs.Newf(errs.Internal, "seq mark of %s would overflow", conversationID)
		}
		hi := cur + block
		var q *gocql.Query
		if exists {
			q = l.s.Query(cqlSeqMarkAdvance, hi, conversationID, cur)
		} else {
			q = l.s.Query(cqlSeqMarkInsert, conversationID, hi)
		}
		seen := map[string]any{}
		applied, err := q.WithContext(ctx).SerialConsistency(gocql.Serial).MapScanCAS(seen)
		if err != nil {
			return 0, seqCassandraErr(ctx, err, "lease seq block")
		}
		if applied {
			return hi, nil
		}
		// Someone else raised the mark (or created the row) first: try
		// again above what the transaction saw.
		switch v := seen["hi"].(type) {
		case int64:
			cur, exists = v, true
		default:
			// Not applied without a current value (the row vanished or the
			// driver left it out): read it afresh.
			if cur, exists, err = l.read(ctx, conversationID); err != nil {
				return 0, err
			}
		}
		if err := pause(ctx, backoff); err != nil {
			return 0, err
		}
		if backoff < seqLeaseMaxBackoff {
			backoff *= 2
		}
	}
	return 0, errs.Newf(errs.Unavailable, "seq lease for %s lost %d compare-and-set rounds in a row", conversationID, seqLeaseAttempts)
}

// maxSeq bounds marks so cur+block never overflows.
const maxSeq = int64(1<<63 - 1)

// pause waits up to d (jittered) unless ctx ends first.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d/2 + rand.N(d/2+1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return errs.As(ctx.Err())
	case <-t.C:
		return nil
	}
}

// Mark implements SeqLeaser.
func (l *CassandraSeqLeaser) Mark(ctx context.Context, conversationID string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, errs.As(err)
	}
	hi, _, err := l.read(ctx, conversationID)
	return hi, err
}

func (l *CassandraSeqLeaser) read(ctx context.Context, conversationID string) (hi int64, exists bool, err error) {
	var v *int64
	err = l.s.Query(cqlSeqMark, conversationID).WithContext(ctx).Consistency(serialRead).Idempotent(true).Scan(&v)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, seqCassandraErr(ctx, err, "read seq mark")
	}
	if v == nil {
		// A row without hi (never written by this code): treat as 0 but
		// compare-and-set against null is not possible, so report it.
		return 0, false, errs.Newf(errs.Internal, "seq mark of %s has no value", conversationID)
	}
	return *v, true, nil
}

// seqCassandraErr maps a Cassandra failure (shared/cassandra.Err).
func seqCassandraErr(ctx context.Context, err error, what string) error {
	return cassandra.Err(ctx, err, "seq marks: "+what)
}
