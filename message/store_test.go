package message_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/message/storetest"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
)

// pebbleDir opens a Pebble database in a temporary directory; reopen
// closes it (as a crash would, dropping every in-memory state built on it)
// and opens it again. The last one is closed when the test ends.
type pebbleDir struct {
	dir string
	db  *pebble.DB
}

func newPebbleDir(t *testing.T) *pebbleDir {
	p := &pebbleDir{dir: t.TempDir()}
	p.db = openPebble(t, p.dir)
	t.Cleanup(func() { _ = p.db.Close() })
	return p
}

func (p *pebbleDir) reopen(t *testing.T) *pebble.DB {
	if err := p.db.Close(); err != nil {
		t.Fatal(err)
	}
	p.db = openPebble(t, p.dir)
	return p.db
}

func TestPebbleDedupStoreContract(t *testing.T) {
	storetest.RunDedupStore(t, func(t *testing.T) (message.DedupStore, storetest.Reopen[message.DedupStore]) {
		p := newPebbleDir(t)
		return message.NewPebbleDedupStore(p.db), func(t *testing.T) message.DedupStore {
			return message.NewPebbleDedupStore(p.reopen(t))
		}
	})
}

func TestPebbleSeqLeaserContract(t *testing.T) {
	storetest.RunSeqLeaser(t, func(t *testing.T) (message.SeqLeaser, storetest.Reopen[message.SeqLeaser]) {
		p := newPebbleDir(t)
		return message.NewPebbleSeqLeaser(p.db), func(t *testing.T) message.SeqLeaser {
			return message.NewPebbleSeqLeaser(p.reopen(t))
		}
	})
}

func TestLeasedAllocatorOverPebbleContract(t *testing.T) {
	storetest.RunSeqAllocator(t, func(t *testing.T) (message.SeqAllocator, storetest.Reopen[message.SeqAllocator]) {
		p := newPebbleDir(t)
		return message.NewLeasedAllocator(message.NewPebbleSeqLeaser(p.db), 10), func(t *testing.T) message.SeqAllocator {
			return message.NewLeasedAllocator(message.NewPebbleSeqLeaser(p.reopen(t)), 10)
		}
	})
}

// backwardsLeaser simulates a store that lost its marks.
type backwardsLeaser struct{ hi int64 }

func (l *backwardsLeaser) Lease(context.Context, string, int64) (int64, error) { return l.hi, nil }
func (l *backwardsLeaser) Mark(context.Context, string) (int64, error)         { return l.hi, nil }

func TestLeasedAllocatorRefusesToGoBackwards(t *testing.T) {
	l := &backwardsLeaser{hi: 2}
	a := message.NewLeasedAllocator(l, 2)
	for i := 0; i < 2; i++ {
		if _, err := a.Next(context.Background(), "p:a:b"); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := a.Next(context.Background(), "p:a:b"); err == nil {
		t.Fatalf("allocator handed out %d again after the leaser went backwards", s)
	}
}

// flakyProducer fails its first produce.
type flakyProducer struct {
	mu    sync.Mutex
	fail  int
	count int
}

func (p *flakyProducer) Produce(context.Context, string, []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail > 0 {
		p.fail--
		return errors.New("broker down")
	}
	p.count++
	return nil
}

func TestFailedProduceReleasesTheClaimAndAnswersUnavailable(t *testing.T) {
	db := openPebble(t, t.TempDir())
	defer db.Close()
	prod := &flakyProducer{fail: 1}
	svc := message.New(&relations{blocked: map[[2]string]bool{}}, &groups{}, &reader{msgs: map[string]message.Message{}},
		message.NewLeasedAllocator(message.NewPebbleSeqLeaser(db), 0), message.NewPebbleDedupStore(db), prod, message.Options{})
	req := message.SendRequest{SenderID: ids.New(), ToUserID: ids.New(), ClientMsgID: "c", Type: "text", Content: textContent("x")}
	if _, err := svc.SendMessage(context.Background(), req); !errs.HasCode(err, errs.Unavailable) {
		t.Fatalf("got %v, want unavailable", err)
	}
	m, err := svc.SendMessage(context.Background(), req)
	if err != nil {
		t.Fatalf("retry after a failed produce: %v", err)
	}
	// The failed attempt's seq is skipped, never reused.
	if m.Seq != 2 || prod.count != 1 {
		t.Fatalf("retry got seq %d, %d produced", m.Seq, prod.count)
	}
}
