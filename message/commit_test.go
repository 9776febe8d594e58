package message_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/testinfra"
)

// gatedProducer holds its first produce until open is closed, and keeps
// every call's records, as a broker would append them.
type gatedProducer struct {
	open    chan struct{}
	entered chan struct{}
	once    sync.Once

	mu    sync.Mutex
	calls [][]message.Event
	fail  func(call int, rec int) error // nil: every record is written
}

func newGatedProducer() *gatedProducer {
	return &gatedProducer{open: make(chan struct{}), entered: make(chan struct{})}
}

func (p *gatedProducer) Produce(_ context.Context, recs ...message.Record) error {
	first := false
	p.once.Do(func() { first = true })
	if first {
		close(p.entered)
		<-p.open
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	call := len(p.calls)
	var evs []message.Event
	var errsOf message.RecordErrors
	failed := false
	for i, r := range recs {
		var ev message.Event
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			return err
		}
		if r.Key != ev.ConversationID {
			return fmt.Errorf("record key %q for conversation %q", r.Key, ev.ConversationID)
		}
		var err error
		if p.fail != nil {
			err = p.fail(call, i)
		}
		errsOf = append(errsOf, err)
		if err != nil {
			failed = true
			continue
		}
		evs = append(evs, ev)
	}
	p.calls = append(p.calls, evs)
	if failed {
		return errsOf
	}
	return nil
}

func newCommitService(t *testing.T, prod message.Producer) *message.Messages {
	db := testinfra.OpenPebble(t, t.TempDir())
	t.Cleanup(func() { db.Close() })
	return newMessages(t, message.Deps{
		Relations: &relations{blocked: map[[2]string]bool{}}, Groups: &groups{}, Reader: &reader{msgs: map[string]message.Message{}},
		Seqs: message.NewLeasedAllocator(message.NewPebbleSeqLeaser(db), 0), Dedup: message.NewPebbleDedupStore(db), Producer: prod, Signals: prod,
	}, message.Options{})
}

// sendsWhileAProduceWaits starts one send, holds its produce at the
// broker, then starts n more sends of the same conversation and waits
// until they all queue behind it.
func sendsWhileAProduceWaits(t *testing.T, svc *message.Messages, prod *gatedProducer, n int) (results []chan error, sent []chan message.Message) {
	t.Helper()
	alice, bob := ids.New(), ids.New()
	conv := ids.P2P(alice, bob)
	send := func(i int) {
		req := message.SendRequest{SenderID: alice, ToUserID: bob, ClientMsgID: fmt.Sprint("c", i), Type: "text", Content: textContent(fmt.Sprint("m", i))}
		m, err := svc.SendMessage(context.Background(), req)
		results[i] <- err
		sent[i] <- m
	}
	for i := 0; i <= n; i++ {
		results = append(results, make(chan error, 1))
		sent = append(sent, make(chan message.Message, 1))
	}
	go send(0)
	<-prod.entered
	for i := 1; i <= n; i++ {
		go send(i)
	}
	testinfra.Eventually(t, 10*time.Second, fmt.Sprintf("%d sends queued", n), func() bool { return message.Waiting(svc, conv) >= n })
	close(prod.open)
	return results, sent
}

func TestSendsQueuedBehindAProduceGoOutInOneProduceInSeqOrder(t *testing.T) {
	prod := newGatedProducer()
	svc := newCommitService(t, prod)
	const n = 50
	results, sent := sendsWhileAProduceWaits(t, svc, prod, n)
	seqs := map[int64]bool{}
	for i := range results {
		if err := <-results[i]; err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		seqs[(<-sent[i]).Seq] = true
	}
	for s := int64(1); s <= n+1; s++ {
		if !seqs[s] {
			t.Fatalf("seq %d missing from %v", s, seqs)
		}
	}
	prod.mu.Lock()
	defer prod.mu.Unlock()
	if len(prod.calls) != 2 || len(prod.calls[0]) != 1 || len(prod.calls[1]) != n {
		sizes := []int{}
		for _, c := range prod.calls {
			sizes = append(sizes, len(c))
		}
		t.Fatalf("produce calls of %v records, want [1 %d]", sizes, n)
	}
	// The broker's order is seq order: the partition never sees a seq
	// before a smaller one.
	var last int64
	for _, call := range prod.calls {
		for _, ev := range call {
			if ev.Message.Seq != last+1 {
				t.Fatalf("seq %d produced after %d", ev.Message.Seq, last)
			}
			last = ev.Message.Seq
		}
	}
}

func TestARecordTheBrokerRefusedFailsOnlyItsOwnSend(t *testing.T) {
	prod := newGatedProducer()
	prod.fail = func(call, rec int) error {
		if call == 1 && rec == 2 {
			return errors.New("not leader for partition")
		}
		return nil
	}
	svc := newCommitService(t, prod)
	const n = 5
	results, _ := sendsWhileAProduceWaits(t, svc, prod, n)
	failed := 0
	for i := range results {
		if err := <-results[i]; err != nil {
			if !errs.HasCode(err, errs.Unavailable) {
				t.Fatalf("send %d: %v, want unavailable", i, err)
			}
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d sends failed, want exactly the refused one", failed)
	}
}

// A sender whose context ends while its message is at the broker learns
// the real outcome, so its dedup claim is completed: the retry returns
// the original instead of sending the message twice.
func TestASendWhoseContextEndsMidProduceKeepsItsOutcome(t *testing.T) {
	prod := newGatedProducer()
	svc := newCommitService(t, prod)
	alice, bob := ids.New(), ids.New()
	req := message.SendRequest{SenderID: alice, ToUserID: bob, ClientMsgID: "once", Type: "text", Content: textContent("hi")}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan message.Message, 1)
	errc := make(chan error, 1)
	go func() {
		m, err := svc.SendMessage(ctx, req)
		errc <- err
		done <- m
	}()
	<-prod.entered // the record is at the broker
	cancel()
	close(prod.open)
	if err := <-errc; err != nil {
		t.Fatalf("send: %v", err)
	}
	first := <-done
	again, err := svc.SendMessage(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || again.Seq != first.Seq {
		t.Fatalf("retry got %s/%d, want the original %s/%d", again.ID, again.Seq, first.ID, first.Seq)
	}
	prod.mu.Lock()
	defer prod.mu.Unlock()
	if len(prod.calls) != 1 {
		t.Fatalf("%d produces, want 1", len(prod.calls))
	}
}
