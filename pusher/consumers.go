package pusher

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/kafkax"
)

// RunPushConsumer consumes beehive.messages in group "push" until ctx
// ends. base supplies brokers, dead-letter writer, retries and logger; its
// GroupID and Topic are set here.
//
// Records are handled in partition order in batches, committed once per
// batch: committing every record alone capped delivery at about 1,000
// a second (docs/LOAD.md). A failing batch is retried, then record by
// record, so a redelivery can repeat a frame a client already has; clients
// drop it by seq, and offline pushes are deduplicated by their pushed
// records.
func (p *Pusher) RunPushConsumer(ctx context.Context, base kafkax.ConsumerConfig) error {
	base.GroupID, base.Topic = PushGroup, kafkax.TopicMessages
	if base.MaxWait <= 0 {
		base.MaxWait = 2 * time.Millisecond
	}
	if base.MaxBatch <= 0 {
		// A batch's frames go out when the whole batch is handled, so a
		// smaller batch bounds how long the first record's frame waits.
		base.MaxBatch = 32
	}
	return kafkax.RunBatchConsumer(ctx, base, p.HandleBatch)
}

// RunTypingConsumer consumes beehive.typing in group "typing" until ctx
// ends, delivering each notice to the other participants' online
// sockets. A notice older than maxTypingAge (a consumer that was away) is
// dropped: it would say someone types who stopped long ago.
func (p *Pusher) RunTypingConsumer(ctx context.Context, base kafkax.ConsumerConfig) error {
	base.GroupID, base.Topic = TypingGroup, kafkax.TopicTyping
	if base.MaxWait <= 0 {
		base.MaxWait = 2 * time.Millisecond
	}
	return kafkax.RunConsumer(ctx, base, p.HandleTyping)
}

// maxTypingAge is how old a typing notice may be and still be delivered.
const maxTypingAge = 10 * time.Second

// HandleTyping delivers one beehive.typing record. The message service
// checked that its user may message the conversation; a group's members
// are checked again here against the member cache.
func (p *Pusher) HandleTyping(ctx context.Context, m kafka.Message) error {
	r, err := message.DecodeTypingRecord(m.Key, m.Value)
	if err != nil {
		return err
	}
	if p.now().Sub(r.At) > maxTypingAge {
		return nil
	}
	err = p.typing(ctx, r.UserID, r.ConversationID)
	if errs.HasCode(err, errs.PermissionDenied) || errs.HasCode(err, errs.InvalidArgument) {
		return nil // left the group since: nobody to tell
	}
	return err
}

// RunOfflineConsumer consumes beehive.push.offline in group "offline"
// until ctx ends, notifying each task's device.
func (p *Pusher) RunOfflineConsumer(ctx context.Context, base kafkax.ConsumerConfig) error {
	base.GroupID, base.Topic = OfflineGroup, kafkax.TopicPushOffline
	return kafkax.RunConsumer(ctx, base, p.HandleOffline)
}
