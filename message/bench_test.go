package message_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/ids"
)

// BenchmarkSendPath measures a full send: validation, filter, dedup claim
// and completion (synced Pebble writes), seq, produce to the embedded
// broker with acks, as the embedded mode runs it.
func BenchmarkSendPath(b *testing.B) {
	e := newEnv(b, func(o *message.Options) { o.Filter = message.NewFilter(tenThousandWords(), message.FilterMask) })
	b.Run("sequential-one-conversation", func(b *testing.B) {
		b.ReportAllocs()
		run := ids.New() // the harness calls this again with a larger b.N: no dedup hits
		for i := 0; i < b.N; i++ {
			e.sendText(b, e.alice, e.bob, run+strconv.Itoa(i), "hello, how are you today?")
		}
	})
	b.Run("parallel-one-conversation", func(b *testing.B) {
		b.ReportAllocs()
		// Many senders of one group-sized conversation at once: their
		// entries share produces (commit.go) instead of taking turns.
		b.SetParallelism(16)
		var n atomic.Int64
		from, to := ids.New(), ids.New()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				_, err := e.svc.SendMessage(context.Background(), message.SendRequest{SenderID: from, ToUserID: to, ClientMsgID: "o" + strconv.FormatInt(i, 10), Type: message.TypeText, Content: textContent("hello, how are you today?")})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("parallel-many-conversations", func(b *testing.B) {
		b.ReportAllocs()
		// Many senders at once, as a gateway has: their writes batch together.
		b.SetParallelism(16)
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			from, to := ids.New(), ids.New()
			for pb.Next() {
				i := n.Add(1)
				_, err := e.svc.SendMessage(context.Background(), message.SendRequest{SenderID: from, ToUserID: to, ClientMsgID: "p" + strconv.FormatInt(i, 10), Type: message.TypeText, Content: textContent("hello, how are you today?")})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
