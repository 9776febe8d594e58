package message

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"sync"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
)

// Entries of a conversation (messages and recall events) get their seq and
// reach Kafka through a group commit: while one produce of a conversation
// is waiting for the broker, the entries that arrive queue up, and the
// next produce takes them all, in arrival order, with consecutive seqs.
// Partition order therefore still equals seq order (one produce at a time
// per conversation, records in seq order inside it), but a busy
// conversation is no longer limited to one entry per broker round trip.

// commitStripes is the number of queues conversations are spread over;
// conversations sharing a stripe share its produces, which is harmless.
const commitStripes = 1024

// maxCommitBatch bounds the entries of one produce.
const maxCommitBatch = 256

// commitQueue is one stripe: the entries waiting, and whether a leader is
// producing for the stripe now.
type commitQueue struct {
	mu      sync.Mutex
	waiting []*entry
	leading bool
}

// entry is one message or recall event waiting for its seq and produce.
type entry struct {
	ctx  context.Context
	m    Message
	ev   *Event
	done chan struct{}
	err  error
}

func (s *Messages) commitQueue(conv string) *commitQueue {
	h := fnv.New32a()
	_, _ = h.Write([]byte(conv))
	return &s.commits[h.Sum32()%commitStripes]
}

// produceEntry gives m its id, seq and time and produces ev carrying it.
// The first caller of an idle stripe leads: it produces its own entry and
// whatever queued meanwhile, then hands the lead to a goroutine if more
// arrived, so no caller waits for others' produces after its own.
func (s *Messages) produceEntry(ctx context.Context, m Message, ev *Event) (Message, error) {
	e := &entry{ctx: ctx, m: m, ev: ev, done: make(chan struct{})}
	q := s.commitQueue(m.ConversationID)
	q.mu.Lock()
	q.waiting = append(q.waiting, e)
	lead := !q.leading
	q.leading = true
	q.mu.Unlock()
	if lead {
		s.commitOnce(q)
	}
	// Wait for the outcome even when ctx ends first: the caller then
	// completes or releases its dedup claim by what really happened, so a
	// retry gets the original message or a clean second try, never a
	// duplicate. The wait is bounded: an entry whose ctx ended before it
	// got a seq is dropped, and each produce takes at most ProduceTimeout.
	<-e.done
	return e.m, e.err
}

// commitOnce produces one batch of q's waiting entries and passes the lead
// on if more are waiting.
func (s *Messages) commitOnce(q *commitQueue) {
	q.mu.Lock()
	n := min(len(q.waiting), maxCommitBatch)
	batch := q.waiting[:n:n]
	q.waiting = q.waiting[n:]
	q.mu.Unlock()

	s.commit(batch)

	q.mu.Lock()
	more := len(q.waiting) > 0
	if !more {
		q.leading = false
		q.waiting = nil
	}
	q.mu.Unlock()
	if more {
		go s.commitOnce(q)
	}
}

// commit allocates the batch's seqs in order and produces it in one call,
// holding its conversations' leases (where there are several instances)
// from the first seq to the produce's answer.
func (s *Messages) commit(batch []*entry) {
	var notHeld map[string]error
	if s.leases != nil {
		var release func()
		release, notHeld = holdAll(batch[0].ctx, s.leases, conversationsOf(batch))
		defer release()
	}
	records := make([]Record, 0, len(batch))
	sent := make([]*entry, 0, len(batch))
	for _, e := range batch {
		if err := e.ctx.Err(); err != nil {
			e.finish(errs.As(err)) // its caller is gone: take no seq for it
			continue
		}
		if err := notHeld[e.m.ConversationID]; err != nil {
			e.finish(err) // another instance still sends it: retry later
			continue
		}
		rec, err := s.prepare(e)
		if err != nil {
			e.finish(err)
			continue
		}
		records = append(records, rec)
		sent = append(sent, e)
	}
	if len(records) == 0 {
		return
	}
	// The produce serves several callers, so no single caller's context
	// bounds it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(sent[0].ctx), s.opts.ProduceTimeout)
	defer cancel()
	for i, err := range recordErrors(s.producer.Produce(ctx, records...), len(records)) {
		if err != nil {
			err = errs.Wrap(errs.Unavailable, err, "message bus unavailable")
		}
		sent[i].finish(err)
	}
}

// prepare gives e's message its seq, id and time and encodes its event.
func (s *Messages) prepare(e *entry) (Record, error) {
	seq, err := s.seqs.Next(e.ctx, e.m.ConversationID)
	if err != nil {
		return Record{}, errs.Wrap(errs.Unavailable, err, "cannot allocate a seq")
	}
	now := s.now()
	e.m.ID = ids.NewAt(now)
	e.m.Seq = seq
	e.m.SentAt = now
	if e.m.Mentions == nil {
		e.m.Mentions = []string{}
	}
	e.ev.Message = &e.m
	e.ev.At = now
	b, err := json.Marshal(e.ev)
	if err != nil {
		return Record{}, errs.Wrap(errs.Internal, err, "encode event")
	}
	return Record{Key: e.m.ConversationID, Value: b}, nil
}

func (e *entry) finish(err error) {
	e.err = err
	close(e.done)
}

// conversationsOf lists a batch's conversations once each.
func conversationsOf(batch []*entry) []string {
	seen := make(map[string]bool, len(batch))
	out := make([]string, 0, 1)
	for _, e := range batch {
		if !seen[e.m.ConversationID] {
			seen[e.m.ConversationID] = true
			out = append(out, e.m.ConversationID)
		}
	}
	return out
}
