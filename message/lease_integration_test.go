//go:build integration

package message_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
)

// A conversation's lease is one instance's at a time: another waits for
// its release, and takes it over from a holder that died after the TTL.
func TestRedisLeasesHandOverAConversation(t *testing.T) {
	prefix := testinfra.KeyPrefix(t)
	a := message.NewRedisLeases(testinfra.Redis(t), prefix)
	b := message.NewRedisLeases(testinfra.Redis(t), prefix)
	a.TTL, b.TTL = 500*time.Millisecond, 500*time.Millisecond
	ctx := context.Background()
	conv := ids.P2P(ids.New(), ids.New())

	release, err := a.Hold(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan time.Time, 1)
	go func() {
		rel, err := b.Hold(ctx, conv)
		if err != nil {
			t.Error(err)
		}
		got <- time.Now()
		rel()
	}()
	// a keeps it past its TTL: Hold extends it while the produce runs.
	time.Sleep(3 * a.TTL / 2)
	select {
	case <-got:
		t.Fatal("b took the lease while a held it")
	default:
	}
	released := time.Now()
	release()
	if at := <-got; at.Before(released) {
		t.Fatal("b took the lease before a released it")
	}

	// A holder that died (took the lease, never released it, no longer
	// extends it) frees the conversation after its TTL.
	rdb := testinfra.Redis(t)
	if err := rdb.Set(ctx, prefix+"lease:"+conv, "dead-instance", 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	c := message.NewRedisLeases(testinfra.Redis(t), prefix)
	c.MaxWait = 50 * time.Millisecond
	if _, err := c.Hold(ctx, conv); !errs.HasCode(err, errs.Unavailable) {
		t.Fatalf("a conversation another instance holds: %v, want unavailable", err)
	}
	c.MaxWait = 2 * time.Second
	start := time.Now()
	rel, err := c.Hold(ctx, conv)
	if err != nil {
		t.Fatalf("after the dead holder's TTL: %v", err)
	}
	rel()
	if waited := time.Since(start); waited > time.Second {
		t.Fatalf("waited %v for a lease whose holder died", waited)
	}
}

// shuffledProducer records what it is given in the order it is given,
// with a random pause before each produce, as a broker under load: two
// instances producing one conversation at once would interleave.
type shuffledProducer struct {
	mu   sync.Mutex
	seqs map[string][]int64
}

func (p *shuffledProducer) Produce(_ context.Context, recs ...message.Record) error {
	time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range recs {
		var ev message.Event
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			return err
		}
		if ev.Message != nil {
			p.seqs[ev.ConversationID] = append(p.seqs[ev.ConversationID], ev.Message.Seq)
		}
	}
	return nil
}

// Two instances sending into the same conversations at once, as during a
// handover: with leases, each conversation reaches the topic in seq order.
func TestTwoInstancesKeepPartitionOrderWithLeases(t *testing.T) {
	prefix := testinfra.KeyPrefix(t)
	leaser := message.NewCassandraSeqLeaser(testinfra.CassandraSession(t))
	prod := &shuffledProducer{seqs: map[string][]int64{}}
	rel := &relations{blocked: map[[2]string]bool{}}
	svcs := make([]message.Service, 2)
	for i := range svcs {
		c := testinfra.Redis(t)
		svcs[i] = newMessages(t, message.Deps{
			Relations: rel, Groups: &groups{}, Reader: &reader{msgs: map[string]message.Message{}},
			Seqs: message.NewRedisSeqAllocator(c, prefix, leaser, 0), Dedup: message.NewRedisDedupStore(c, prefix),
			Producer: prod, Signals: prod, Leases: message.NewRedisLeases(c, prefix),
		}, message.Options{})
	}
	alice, bobs := ids.New(), []string{ids.New(), ids.New()}
	var wg sync.WaitGroup
	for i := range svcs {
		for _, bob := range bobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < 40; k++ {
					_, err := svcs[i].SendMessage(context.Background(), message.SendRequest{
						SenderID: alice, ToUserID: bob, ClientMsgID: fmt.Sprintf("%d-%s-%d", i, bob, k), Type: message.TypeText, Content: textContent("x"),
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	for conv, seqs := range prod.seqs {
		if len(seqs) != 80 {
			t.Fatalf("%s: %d produced, want 80", conv, len(seqs))
		}
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Fatalf("%s reached the topic out of seq order: %v", conv, seqs)
			}
		}
	}
}
