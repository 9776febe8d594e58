package pusher

import (
	"context"
	"time"

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

// RunOfflineConsumer consumes beehive.push.offline in group "offline"
// until ctx ends, notifying each task's device.
func (p *Pusher) RunOfflineConsumer(ctx context.Context, base kafkax.ConsumerConfig) error {
	base.GroupID, base.Topic = OfflineGroup, kafkax.TopicPushOffline
	return kafkax.RunConsumer(ctx, base, p.HandleOffline)
}
