package pusher

import (
	"context"

	"github.com/beehive-im/beehive/shared/kafkax"
)

// RunPushConsumer consumes beehive.messages in group "push" until ctx
// ends. base supplies brokers, dead-letter writer, retries and logger; its
// GroupID and Topic are set here.
func (p *Pusher) RunPushConsumer(ctx context.Context, base kafkax.ConsumerConfig) error {
	base.GroupID, base.Topic = PushGroup, kafkax.TopicMessages
	return kafkax.RunConsumer(ctx, base, p.HandleMessage)
}

// RunOfflineConsumer consumes beehive.push.offline in group "offline"
// until ctx ends, notifying each task's device.
func (p *Pusher) RunOfflineConsumer(ctx context.Context, base kafkax.ConsumerConfig) error {
	base.GroupID, base.Topic = OfflineGroup, kafkax.TopicPushOffline
	return kafkax.RunConsumer(ctx, base, p.HandleOffline)
}
