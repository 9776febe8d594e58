//go:build integration

package message_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/message/storetest"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/redisx"
	"github.com/beehive-im/beehive/shared/testinfra"
)

// deleteKeys removes every key under prefix, as a Redis restarted without
// persistence (or a FLUSHALL) would.
func deleteKeys(c redis.UniversalClient, prefix string) error {
	ctx := context.Background()
	var keys []string
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) > 0 {
		return c.Del(ctx, keys...).Err()
	}
	return nil
}

func mustDeleteKeys(t *testing.T, c redis.UniversalClient, prefix string) {
	t.Helper()
	if err := deleteKeys(c, prefix); err != nil {
		t.Fatal(err)
	}
}

func TestCassandraSeqLeaserContract(t *testing.T) {
	session := testinfra.CassandraSession(t)
	storetest.RunSeqLeaser(t, func(t *testing.T) (message.SeqLeaser, storetest.Reopen[message.SeqLeaser]) {
		return message.NewCassandraSeqLeaser(session), func(t *testing.T) message.SeqLeaser {
			// A restarted process: a new session, nothing shared.
			return message.NewCassandraSeqLeaser(testinfra.CassandraSession(t))
		}
	})
}

// Two processes (two sessions) leasing one conversation at once: every
// block is granted once and the blocks tile the range without gaps.
func TestCassandraSeqLeaserInstancesLeaseDisjointBlocks(t *testing.T) {
	leasers := []*message.CassandraSeqLeaser{
		message.NewCassandraSeqLeaser(testinfra.CassandraSession(t)),
		message.NewCassandraSeqLeaser(testinfra.CassandraSession(t)),
	}
	conv := ids.Group(ids.New())
	const perWorker, workers, block = 6, 6, 4
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				hi, err := leasers[w%2].Lease(context.Background(), conv, block)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[hi] {
					t.Errorf("block ending at %d granted twice", hi)
				}
				seen[hi] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i := int64(1); i <= workers*perWorker; i++ {
		if !seen[i*block] {
			t.Fatalf("no block ends at %d", i*block)
		}
	}
	for _, l := range leasers {
		if m, err := l.Mark(context.Background(), conv); err != nil || m != workers*perWorker*block {
			t.Fatalf("mark = %d, %v; want %d", m, err, workers*perWorker*block)
		}
	}
}

func TestRedisDedupStoreContract(t *testing.T) {
	c := testinfra.Redis(t)
	storetest.RunDedupStore(t, func(t *testing.T) (message.DedupStore, storetest.Reopen[message.DedupStore]) {
		prefix := testinfra.KeyPrefix(t)
		return message.NewRedisDedupStore(c, prefix), func(t *testing.T) message.DedupStore {
			return message.NewRedisDedupStore(testinfra.Redis(t), prefix)
		}
	})
}

// Two instances (two clients) share claims: one winner among both, and a
// send completed through one is the original for a retry through the
// other.
func TestRedisDedupStoreInstancesShareClaims(t *testing.T) {
	prefix := testinfra.KeyPrefix(t)
	stores := []*message.RedisDedupStore{
		message.NewRedisDedupStore(testinfra.Redis(t), prefix),
		message.NewRedisDedupStore(testinfra.Redis(t), prefix),
	}
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for round := 0; round < 20; round++ {
		key := "send/" + ids.New() + "/c"
		const n = 8
		var wg sync.WaitGroup
		start := make(chan struct{})
		type result struct {
			c   message.Claim
			err error
			by  int
		}
		results := make(chan result, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				c, err := stores[i%2].Claim(ctx, key, now, 30*time.Second)
				results <- result{c, err, i % 2}
			}()
		}
		close(start)
		wg.Wait()
		close(results)
		var winner *result
		for r := range results {
			switch {
			case r.err == nil:
				if winner != nil {
					t.Fatalf("round %d: two claims won", round)
				}
				winner = &r
			case errors.Is(r.err, message.ErrClaimPending):
			default:
				t.Fatalf("round %d: %v", round, r.err)
			}
		}
		if winner == nil {
			t.Fatalf("round %d: no claim won", round)
		}
		m := message.Message{ID: ids.New(), Seq: int64(round + 1), Type: "text", Content: json.RawMessage(`"x"`), Mentions: []string{}}
		if err := stores[winner.by].Complete(ctx, key, winner.c.Token, m); err != nil {
			t.Fatal(err)
		}
		c, err := stores[1-winner.by].Claim(ctx, key, now.Add(time.Minute), 30*time.Second)
		if err != nil || c.Original == nil || c.Original.ID != m.ID || c.Original.Seq != m.Seq {
			t.Fatalf("round %d: claim through the other instance = %+v, %v", round, c, err)
		}
	}
}

// A pending claim lives in Redis for its ttl only, on Redis' clock too: a
// crashed sender's claim does not stay behind as garbage.
func TestRedisDedupStorePendingClaimExpiresInRedis(t *testing.T) {
	c := testinfra.Redis(t)
	prefix := testinfra.KeyPrefix(t)
	s := message.NewRedisDedupStore(c, prefix)
	ctx := context.Background()
	key := "send/" + ids.New() + "/c"
	cl, err := s.Claim(ctx, key, time.Now(), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pttl, err := c.PTTL(ctx, prefix+"dedup:"+key).Result()
	if err != nil || pttl <= 0 || pttl > 20*time.Second {
		t.Fatalf("pending claim's ttl in Redis = %v, %v; want (0, 20s]", pttl, err)
	}
	if err := s.Complete(ctx, key, cl.Token, message.Message{ID: ids.New()}); err != nil {
		t.Fatal(err)
	}
	pttl, err = c.PTTL(ctx, prefix+"dedup:"+key).Result()
	if err != nil || pttl < message.DefaultDedupRetention-time.Hour || pttl > message.DefaultDedupRetention {
		t.Fatalf("completed entry's ttl in Redis = %v, %v; want about %v", pttl, err, message.DefaultDedupRetention)
	}
}

// redisAllocators returns allocators over Cassandra marks sharing one
// prefix, each with its own Redis client (as separate instances would).
func redisAllocators(t *testing.T, prefix string, leaser message.SeqLeaser, block int64, n int) []*message.RedisSeqAllocator {
	out := make([]*message.RedisSeqAllocator, n)
	for i := range out {
		out[i] = message.NewRedisSeqAllocator(testinfra.Redis(t), prefix, leaser, block)
	}
	return out
}

func TestRedisSeqAllocatorContract(t *testing.T) {
	c := testinfra.Redis(t)
	leaser := message.NewCassandraSeqLeaser(testinfra.CassandraSession(t))
	storetest.RunSeqAllocator(t, func(t *testing.T) (message.SeqAllocator, storetest.Reopen[message.SeqAllocator]) {
		prefix := testinfra.KeyPrefix(t)
		return message.NewRedisSeqAllocator(c, prefix, leaser, 10), func(t *testing.T) message.SeqAllocator {
			return message.NewRedisSeqAllocator(testinfra.Redis(t), prefix, leaser, 10)
		}
	})
}

// The contract again, with the restart also losing every Redis key (a
// Redis restarted without persistence): only the Cassandra marks remain.
func TestRedisSeqAllocatorContractWhenRedisLosesItsKeys(t *testing.T) {
	c := testinfra.Redis(t)
	leaser := message.NewCassandraSeqLeaser(testinfra.CassandraSession(t))
	storetest.RunSeqAllocator(t, func(t *testing.T) (message.SeqAllocator, storetest.Reopen[message.SeqAllocator]) {
		prefix := testinfra.KeyPrefix(t)
		return message.NewRedisSeqAllocator(c, prefix, leaser, 10), func(t *testing.T) message.SeqAllocator {
			mustDeleteKeys(t, c, prefix)
			return message.NewRedisSeqAllocator(testinfra.Redis(t), prefix, leaser, 10)
		}
	})
}

// The Redis allocator over the embedded marks (Pebble) passes too: the
// counter logic does not depend on the leaser.
func TestRedisSeqAllocatorOverPebbleMarksContract(t *testing.T) {
	c := testinfra.Redis(t)
	storetest.RunSeqAllocator(t, func(t *testing.T) (message.SeqAllocator, storetest.Reopen[message.SeqAllocator]) {
		prefix := testinfra.KeyPrefix(t)
		p := newPebbleDir(t)
		return message.NewRedisSeqAllocator(c, prefix, message.NewPebbleSeqLeaser(p.db), 10), func(t *testing.T) message.SeqAllocator {
			mustDeleteKeys(t, c, prefix)
			return message.NewRedisSeqAllocator(testinfra.Redis(t), prefix, message.NewPebbleSeqLeaser(p.reopen(t)), 10)
		}
	})
}

// op is one Next: its seq and its start and end on a logical clock shared
// by every caller (and by the key deletions).
type op struct {
	seq        int64
	start, end int64
	caller     int
}

// checkRealTimeOrder fails when a Next that started after another ended
// got a seq not above it: seqs never go backwards, as any observer sees
// them, across instances and key losses.
func checkRealTimeOrder(t *testing.T, ops []op) {
	t.Helper()
	byEnd := append([]op(nil), ops...)
	sort.Slice(byEnd, func(i, j int) bool { return byEnd[i].end < byEnd[j].end })
	prefixMax := make([]int64, len(byEnd))
	for i, o := range byEnd {
		prefixMax[i] = o.seq
		if i > 0 {
			prefixMax[i] = max(prefixMax[i], prefixMax[i-1])
		}
	}
	for _, y := range ops {
		// ops that ended before y started: byEnd[:k]
		k := sort.Search(len(byEnd), func(i int) bool { return byEnd[i].end > y.start })
		if k > 0 && prefixMax[k-1] >= y.seq {
			t.Fatalf("Next by caller %d got %d after a Next that had ended with %d", y.caller, y.seq, prefixMax[k-1])
		}
	}
}

// runCallers has callers allocators[i%len] call Next each times in conv,
// optionally calling between(n) after the n-th seq of all (inline, while
// the other callers go on). It returns every op; seqs handed out twice or
// going backwards for one caller fail the test.
func runCallers(t *testing.T, allocs []*message.RedisSeqAllocator, conv string, callers, each int, between func(n int64, clock *atomic.Int64)) []op {
	t.Helper()
	var clock, count atomic.Int64
	var seqs storetest.Seqs
	var mu sync.Mutex
	var ops []op
	var wg sync.WaitGroup
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := allocs[c%len(allocs)]
			prev := int64(0)
			for i := 0; i < each; i++ {
				start := clock.Add(1)
				s, err := a.Next(context.Background(), conv)
				end := clock.Add(1)
				if err != nil {
					t.Error(err)
					return
				}
				if s <= prev {
					t.Errorf("caller %d got %d after %d", c, s, prev)
				}
				prev = s
				if err := seqs.Add(s, fmt.Sprintf("caller %d", c)); err != nil {
					t.Error(err)
				}
				mu.Lock()
				ops = append(ops, op{seq: s, start: start, end: end, caller: c})
				mu.Unlock()
				if n := count.Add(1); between != nil {
					between(n, &clock)
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if seqs.Len() != callers*each {
		t.Fatalf("%d distinct seqs, want %d", seqs.Len(), callers*each)
	}
	checkRealTimeOrder(t, ops)
	return ops
}

// Two instances (two Redis clients) allocating in one conversation at
// once, with blocks small enough that they lease often and race to raise
// the block: every seq distinct, each caller's seqs increasing, and Last,
// from either instance, at or above all of them.
func TestRedisSeqAllocatorTwoInstancesShareOneCounter(t *testing.T) {
	leaser := message.NewCassandraSeqLeaser(testinfra.CassandraSession(t))
	allocs := redisAllocators(t, testinfra.KeyPrefix(t), leaser, 7, 2)
	conv := ids.Group(ids.New())
	ops := runCallers(t, allocs, conv, 6, 60, nil)
	var hi int64
	for _, o := range ops {
		hi = max(hi, o.seq)
	}
	for i, a := range allocs {
		l, err := a.Last(context.Background(), conv)
		if err != nil || l < hi {
			t.Fatalf("instance %d: Last = %d, %v; want >= %d", i, l, err, hi)
		}
	}
}

// Redis loses the conversation's keys again and again while two instances
// allocate: after each loss allocation resumes above every seq handed out
// before (checked against the real-time order of all calls), nothing is
// handed out twice, and each caller's seqs keep increasing.
func TestRedisSeqAllocatorResumesAboveEverythingAfterKeysVanish(t *testing.T) {
	leaser := message.NewCassandraSeqLeaser(testinfra.CassandraSession(t))
	prefix := testinfra.KeyPrefix(t)
	allocs := redisAllocators(t, prefix, leaser, 10, 2)
	flusher := testinfra.Redis(t)
	conv := ids.P2P(ids.New(), ids.New())
	var flushes atomic.Int64
	runCallers(t, allocs, conv, 4, 75, func(n int64, clock *atomic.Int64) {
		if n%25 != 0 {
			return
		}
		// The deletion is an op on the shared clock too: Nexts that end
		// before it must be below Nexts that start after it.
		clock.Add(1)
		if err := deleteKeys(flusher, prefix); err != nil {
			t.Error(err)
		}
		clock.Add(1)
		flushes.Add(1)
	})
	if flushes.Load() != 12 {
		t.Fatalf("%d deletions, want 12", flushes.Load())
	}
}

// Sequentially, for the record: handed out 1..15, keys gone, Last reports
// the durable mark (at or above 15) and Next resumes above it.
func TestRedisSeqAllocatorAfterKeysVanishLastIsTheMark(t *testing.T) {
	c := testinfra.Redis(t)
	prefix := testinfra.KeyPrefix(t)
	leaser := message.NewCassandraSeqLeaser(testinfra.CassandraSession(t))
	a := message.NewRedisSeqAllocator(c, prefix, leaser, 10)
	ctx := context.Background()
	conv := ids.Group(ids.New())
	for i := int64(1); i <= 15; i++ {
		if s, err := a.Next(ctx, conv); err != nil || s != i {
			t.Fatalf("Next = %d, %v; want %d", s, err, i)
		}
	}
	mustDeleteKeys(t, c, prefix)
	mark, err := leaser.Mark(ctx, conv)
	if err != nil || mark != 20 {
		t.Fatalf("mark = %d, %v; want 20 (two blocks of 10)", mark, err)
	}
	if l, err := a.Last(ctx, conv); err != nil || l != mark {
		t.Fatalf("Last with the keys gone = %d, %v; want the mark %d", l, err, mark)
	}
	if s, err := a.Next(ctx, conv); err != nil || s != mark+1 {
		t.Fatalf("Next with the keys gone = %d, %v; want %d", s, err, mark+1)
	}
	if m, _ := leaser.Mark(ctx, conv); m != 30 {
		t.Fatalf("mark after resuming = %d, want 30", m)
	}
}

// A leaser that must not be reached.
type unreachableLeaser struct{ t *testing.T }

func (l unreachableLeaser) Lease(context.Context, string, int64) (int64, error) {
	l.t.Error("leaser called with Redis down")
	return 0, errors.New("unreachable")
}

func (l unreachableLeaser) Mark(context.Context, string) (int64, error) {
	l.t.Error("leaser called with Redis down")
	return 0, errors.New("unreachable")
}

// With Redis gone every call fails with unavailable at once (a refused
// connection), never a hang, and never falls back to the durable mark.
func TestRedisBackendsDownAreUnavailableFast(t *testing.T) {
	c := redisx.Open(testinfra.ClosedAddr(t))
	t.Cleanup(func() { _ = c.Close() })
	seqs := message.NewRedisSeqAllocator(c, "m:", unreachableLeaser{t}, 10)
	dedup := message.NewRedisDedupStore(c, "m:")
	now := time.Now()
	calls := map[string]func(context.Context) error{
		"Next": func(ctx context.Context) error { _, err := seqs.Next(ctx, "g:x"); return err },
		"Last": func(ctx context.Context) error { _, err := seqs.Last(ctx, "g:x"); return err },
		"Claim": func(ctx context.Context) error {
			_, err := dedup.Claim(ctx, "send/a/b", now, time.Minute)
			return err
		},
		"Complete": func(ctx context.Context) error { return dedup.Complete(ctx, "send/a/b", "tok", message.Message{}) },
		"Release":  func(ctx context.Context) error { return dedup.Release(ctx, "send/a/b", "tok") },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			err := call(context.Background())
			took := time.Since(start)
			if !errs.HasCode(err, errs.Unavailable) {
				t.Fatalf("err = %v, want unavailable", err)
			}
			if took > time.Second {
				t.Fatalf("took %v to fail with Redis down, want well under the 500ms call timeout", took)
			}
		})
	}
}

// recordingProducer keeps what was produced.
type recordingProducer struct {
	mu   sync.Mutex
	msgs []message.Event
}

func (p *recordingProducer) Produce(_ context.Context, recs ...message.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range recs {
		var ev message.Event
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			return err
		}
		p.msgs = append(p.msgs, ev)
	}
	return nil
}

// Two message-service instances wired as in distributed mode (Redis seqs
// under Cassandra marks, Redis dedup): a retry of a send through the other
// instance returns the original and produces nothing; the next send in
// the conversation, through either, gets the next seq.
func TestServicesSharingRedisBackendsDedupAndSequence(t *testing.T) {
	prefix := testinfra.KeyPrefix(t)
	leaser := message.NewCassandraSeqLeaser(testinfra.CassandraSession(t))
	prod := &recordingProducer{}
	rel := &relations{blocked: map[[2]string]bool{}}
	svcs := make([]message.Service, 2)
	for i := range svcs {
		c := testinfra.Redis(t)
		svcs[i] = newMessages(t, message.Deps{
			Relations: rel, Groups: &groups{}, Reader: &reader{msgs: map[string]message.Message{}},
			Seqs: message.NewRedisSeqAllocator(c, prefix, leaser, 0), Dedup: message.NewRedisDedupStore(c, prefix), Producer: prod, Signals: prod,
		}, message.Options{})
	}
	ctx := context.Background()
	alice, bob := ids.New(), ids.New()
	send := func(i int, cmid string) message.Message {
		t.Helper()
		m, err := svcs[i].SendMessage(ctx, message.SendRequest{SenderID: alice, ToUserID: bob, ClientMsgID: cmid, Type: message.TypeText, Content: textContent("hi " + cmid)})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m1 := send(0, "c1")
	again := send(1, "c1")
	if again.ID != m1.ID || again.Seq != m1.Seq || again.Seq != 1 {
		t.Fatalf("retry through the other instance = %+v, want the original %+v", again, m1)
	}
	m2 := send(1, "c2")
	m3 := send(0, "c3")
	if m2.Seq != 2 || m3.Seq != 3 {
		t.Fatalf("seqs %d, %d; want 2, 3", m2.Seq, m3.Seq)
	}
	if len(prod.msgs) != 3 {
		t.Fatalf("%d events produced, want 3", len(prod.msgs))
	}
	for i, svc := range svcs {
		if l, err := svc.LastSeq(ctx, m1.ConversationID); err != nil || l != 3 {
			t.Fatalf("instance %d: LastSeq = %d, %v; want 3", i, l, err)
		}
	}
}

// gatedLeaser passes leases through to its inner leaser; once armed, the
// next Lease stops after the inner lease (the block is durably granted)
// and reports it on leased, then waits for proceed.
type gatedLeaser struct {
	message.SeqLeaser
	armed   atomic.Bool
	leased  chan int64
	proceed chan struct{}
}

func newGatedLeaser(inner message.SeqLeaser) *gatedLeaser {
	return &gatedLeaser{SeqLeaser: inner, leased: make(chan int64, 1), proceed: make(chan struct{})}
}

func (g *gatedLeaser) Lease(ctx context.Context, conv string, block int64) (int64, error) {
	hi, err := g.SeqLeaser.Lease(ctx, conv, block)
	if err == nil && g.armed.CompareAndSwap(true, false) {
		g.leased <- hi
		<-g.proceed
	}
	return hi, err
}

type nextResult struct {
	seq int64
	err error
}

func nextAsync(a message.SeqAllocator, conv string) chan nextResult {
	ch := make(chan nextResult, 1)
	go func() {
		s, err := a.Next(context.Background(), conv)
		ch <- nextResult{s, err}
	}()
	return ch
}

func mustNext(t *testing.T, a message.SeqAllocator, conv string, want int64) {
	t.Helper()
	s, err := a.Next(context.Background(), conv)
	if err != nil || s != want {
		t.Fatalf("Next = %d, %v; want %d", s, err, want)
	}
}

// An instance leases the next block, stalls before putting it in force,
// and meanwhile another instance moves on to a higher block and Redis then
// loses its keys. The stalled block was leased before the loss was seen:
// it must not seed the counter (its seqs lie below what was handed out);
// the instance leases afresh and resumes above everything.
func TestRedisSeqAllocatorStaleBlockDoesNotSeedAfterKeysVanish(t *testing.T) {
	c := testinfra.Redis(t)
	prefix := testinfra.KeyPrefix(t)
	marks := message.NewCassandraSeqLeaser(testinfra.CassandraSession(t))
	gate := newGatedLeaser(marks)
	a := message.NewRedisSeqAllocator(testinfra.Redis(t), prefix, gate, 5)
	b := message.NewRedisSeqAllocator(testinfra.Redis(t), prefix, marks, 5)
	conv := ids.Group(ids.New())
	for i := int64(1); i <= 5; i++ {
		mustNext(t, b, conv, i) // block 1..5 used up
	}
	gate.armed.Store(true)
	res := nextAsync(a, conv)
	if hi := <-gate.leased; hi != 10 {
		t.Fatalf("a leased up to %d, want 10", hi)
	}
	mustNext(t, b, conv, 11) // b leases 11..15, skipping a's block
	mustNext(t, b, conv, 12)
	mustDeleteKeys(t, c, prefix)
	close(gate.proceed)
	r := <-res
	if r.err != nil || r.seq != 16 {
		t.Fatalf("a's Next after the loss = %d, %v; want 16 (a fresh block above 12)", r.seq, r.err)
	}
	mustNext(t, b, conv, 17)
}

// Two instances see the keys gone and both lease a block to seed from; the
// later lease seeds and hands out seqs, then the keys vanish again. The
// earlier lease must not seed now: a later block was granted, whose seqs
// may have been handed out.
func TestRedisSeqAllocatorSeedsOnlyFromTheLatestLease(t *testing.T) {
	c := testinfra.Redis(t)
	prefix := testinfra.KeyPrefix(t)
	marks := message.NewCassandraSeqLeaser(testinfra.CassandraSession(t))
	gate := newGatedLeaser(marks)
	a := message.NewRedisSeqAllocator(testinfra.Redis(t), prefix, gate, 5)
	b := message.NewRedisSeqAllocator(testinfra.Redis(t), prefix, marks, 5)
	conv := ids.Group(ids.New())
	for i := int64(1); i <= 3; i++ {
		mustNext(t, b, conv, i)
	}
	mustDeleteKeys(t, c, prefix)
	gate.armed.Store(true)
	res := nextAsync(a, conv)
	if hi := <-gate.leased; hi != 10 {
		t.Fatalf("a leased up to %d, want 10", hi)
	}
	mustNext(t, b, conv, 11) // b sees the loss too, leases 11..15, seeds
	mustNext(t, b, conv, 12)
	mustDeleteKeys(t, c, prefix)
	close(gate.proceed)
	r := <-res
	if r.err != nil || r.seq != 16 {
		t.Fatalf("a's Next = %d, %v; want 16 (a fresh block above 12)", r.seq, r.err)
	}
}
