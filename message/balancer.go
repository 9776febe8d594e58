package message

import (
	"context"
	"hash/fnv"
	"sort"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/kit/sd/lb"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
)

// conversationHash is a go-kit balancer that sends each conversation to
// the same instance, so its sends go through one instance's serialised
// path. go-kit's endpointer lists instances in sorted order; we rank them
// per conversation by a hash of (conversation, position), so a given set
// of instances always maps a conversation to the same one. When the set
// changes some conversations move (clients still order by seq). go-kit's
// Balancer picks before seeing the request, so the endpoint returned here
// picks per request, and on an infrastructure failure falls over to the
// next instance in the conversation's ranking.
type conversationHash struct {
	endpointer sd.Endpointer
}

func newConversationHash(e sd.Endpointer) lb.Balancer { return conversationHash{endpointer: e} }

func (b conversationHash) Endpoint() (endpoint.Endpoint, error) {
	eps, err := b.endpointer.Endpoints()
	if err != nil {
		return nil, err
	}
	if len(eps) == 0 {
		return nil, lb.ErrNoEndpoints
	}
	return func(ctx context.Context, req any) (any, error) {
		key := routingKey(ctx, req)
		order := make([]int, len(eps))
		scores := make([]uint64, len(eps))
		for i := range eps {
			order[i] = i
			h := fnv.New64a()
			_, _ = h.Write([]byte(key))
			_, _ = h.Write([]byte{byte(i), byte(i >> 8)})
			scores[i] = h.Sum64()
		}
		sort.Slice(order, func(a, c int) bool { return scores[order[a]] > scores[order[c]] })
		var lastErr error
		for _, i := range order {
			resp, err := eps[i](ctx, req)
			if err == nil || !errs.IsInfrastructure(err) || ctx.Err() != nil {
				return resp, err
			}
			lastErr = err
		}
		return nil, lastErr
	}, nil
}

// routingKey is the conversation a request belongs to, as far as the
// client can tell.
func routingKey(ctx context.Context, req any) string {
	r, ok := req.(SendMessageRequest)
	if !ok {
		return ""
	}
	if r.GroupID != "" {
		return ids.Group(r.GroupID)
	}
	sender := r.SenderID
	if sender == "" {
		sender = identity.UserID(ctx)
	}
	return ids.P2P(sender, r.ToUserID)
}
