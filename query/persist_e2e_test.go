package query_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/kafkax"
	"github.com/beehive-im/beehive/shared/testinfra"
)

func TestPersistConsumerWritesEventsFromTheEmbeddedBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	broker, err := kafkax.StartEmbedded(t.TempDir(), "127.0.0.1:0", log.NewNopLogger())
	mustNil(t, err)
	defer broker.Close()
	brokers := broker.Brokers()
	mustNil(t, kafkax.EnsureTopics(ctx, brokers, kafkax.DefaultTopics(2, 1)))
	w := kafkax.NewWriter(brokers, kafkax.TopicMessages, 2*time.Millisecond)
	defer w.Close()
	dlq := kafkax.NewWriter(brokers, kafkax.TopicDeadLetter, 2*time.Millisecond)
	defer dlq.Close()

	e := newEnv(t)
	u := users(3)
	a, b, c := u[0], u[1], u[2]
	conv := ids.P2P(a, b)
	gid := ids.New()
	gconv := ids.Group(gid)
	e.groups.join(gid, a, 0)
	e.groups.join(gid, c, 0)
	m1 := msgEvent(conv, a, 1)
	evs := []message.Event{m1, msgEvent(conv, b, 2), msgEvent(conv, a, 3), recallEvent(conv, a, 4, m1), readEvent(conv, b, 4),
		msgEvent(gconv, a, 1), msgEvent(gconv, c, 2)}
	recs := records(t, evs...)
	// Poison records in the middle must not block the partition: one that
	// is not JSON, and a whole message (seq 5) message.DecodeRecord refuses
	// for its missing schema version, which must never reach history.
	refused := msgEvent(conv, a, 5)
	refused.Version = 0
	poison := append([]kafka.Message{{Key: []byte(conv), Value: []byte("{garbage")}}, records(t, refused)...)
	recs = append(recs[:3], append(poison, recs[3:]...)...)
	for i := range recs {
		recs[i].Offset = 0
	}
	mustNil(t, w.WriteMessages(ctx, recs...))

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- e.persist.Run(runCtx, kafkax.ConsumerConfig{Brokers: brokers, DeadLetter: dlq, SessionTimeout: time.Second, Backoff: 10 * time.Millisecond})
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("persist consumer: %v", err)
		}
	}()

	testinfra.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		h, err := e.svc.History(ctx, b, conv, nil, nil, 0)
		if err != nil {
			return err
		}
		// The refused seq 5 came before the records of seq 4 on the same
		// partition: were it stored, history would never be just 1..4.
		if !eqSeqs(seqsOf(h.Messages), []int64{1, 2, 3, 4}) || !h.Messages[0].Recalled {
			return fmt.Errorf("history %v", seqsOf(h.Messages))
		}
		cb, err := e.svc.Conversation(ctx, b, conv)
		if err != nil {
			return err
		}
		if cb.ReadSeq != 4 {
			return fmt.Errorf("b's read seq %d", cb.ReadSeq)
		}
		unread, err := e.svc.Unread(ctx, a)
		if err != nil {
			return err
		}
		// 1:1: a's recall entry (seq 4) moved a's read seq to the end;
		// group: c's message 2 after a's own 1.
		if unread.Total != 1 || len(unread.Conversations) != 1 || unread.Conversations[0].ConversationID != gconv {
			return fmt.Errorf("unread of a %+v", unread)
		}
		return nil
	})
	// Both poison records are dead-lettered, by the persist group.
	testinfra.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		dead := deadLetters(t, ctx, brokers)
		if len(dead) != 2 {
			return fmt.Errorf("%d dead letters, want 2", len(dead))
		}
		for _, m := range dead {
			if g := header(m, kafkax.HeaderConsumerGroup); g != query.PersistGroup {
				return fmt.Errorf("dead letter of group %q", g)
			}
		}
		return nil
	})
}

// deadLetters reads the records of the dead-letter topic.
func deadLetters(t *testing.T, ctx context.Context, brokers []string) []kafka.Message {
	t.Helper()
	conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], kafkax.TopicDeadLetter, 0)
	mustNil(t, err)
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
	mustNil(t, err)
	var out []kafka.Message
	if last == first {
		return out
	}
	mustNil(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = conn.Seek(first, kafka.SeekAbsolute)
	mustNil(t, err)
	batch := conn.ReadBatch(1, 10<<20)
	defer batch.Close()
	for int64(len(out)) < last-first {
		m, err := batch.ReadMessage()
		mustNil(t, err)
		out = append(out, m)
	}
	return out
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
