package message

import (
	"context"
	"sort"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd/lb"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
)

// instanceLister is what conversationHash needs of an endpointer: the
// current instances with their identity (grpcx.InstanceEndpointer).
type instanceLister interface {
	Instances() ([]grpcx.Instance, error)
}

// conversationHash is a go-kit balancer that sends each conversation to
// the same instance, so its sends go through one instance's serialised
// path. It ranks the instances per conversation by rendezvous (highest
// random weight) hashing: each instance scores hash(conversation,
// instance address) and the highest score wins. The score depends only on
// the conversation and the instance's identity, never on its position in
// the list, so every client with the same set of instances picks the same
// one, and when one of N instances leaves only the conversations it owned
// move (about 1/N, each to its next-ranked instance); when one joins, only
// the conversations it now wins move, all to it (about 1/(N+1)). A moved
// conversation's sends can briefly run on two instances (the old one
// finishing, the new one starting): clients still order by seq. go-kit's
// Balancer picks before seeing the request, so the endpoint returned here
// picks per request, and on an infrastructure failure falls over to the
// next instance in the conversation's ranking.
type conversationHash struct {
	instances instanceLister
}

func newConversationHash(e instanceLister) lb.Balancer { return conversationHash{instances: e} }

func (b conversationHash) Endpoint() (endpoint.Endpoint, error) {
	ins, err := b.instances.Instances()
	if err != nil {
		return nil, err
	}
	if len(ins) == 0 {
		return nil, lb.ErrNoEndpoints
	}
	return func(ctx context.Context, req any) (any, error) {
		var lastErr error
		for _, i := range rank(routingKey(ctx, req), ins) {
			resp, err := ins[i].Endpoint(ctx, req)
			if err == nil || !errs.IsInfrastructure(err) || ctx.Err() != nil {
				return resp, err
			}
			lastErr = err
		}
		return nil, lastErr
	}, nil
}

// rank returns the indexes of ins from the best instance for key to the
// worst: by descending rendezvous score, ties (of equal scores: in
// practice only duplicate addresses) broken by address so that the order
// of ins never matters.
func rank(key string, ins []grpcx.Instance) []int {
	order := make([]int, len(ins))
	scores := make([]uint64, len(ins))
	k := fnvString(fnvOffset, key)
	for i := range ins {
		order[i] = i
		scores[i] = score(k, ins[i].Addr)
	}
	sort.Slice(order, func(a, c int) bool {
		sa, sc := scores[order[a]], scores[order[c]]
		if sa != sc {
			return sa > sc
		}
		return ins[order[a]].Addr < ins[order[c]].Addr
	})
	return order
}

// The rendezvous score of an instance for a key: 64-bit FNV-1a over the
// key, a separator and the instance address (keyState is the FNV state
// after the key), then the MurmurHash3 64-bit finaliser. FNV alone does
// not mix its last bytes into the high bits, and addresses of one
// cluster differ mostly in their last bytes ("10.0.1.7:9090"); the
// finaliser spreads every input bit over the whole score. Both are fixed
// functions (no per-process seed, unlike hash/maphash): every client
// process must rank alike.
func score(keyState uint64, addr string) uint64 {
	h := fnvString(fnvByte(keyState, 0), addr)
	return fmix64(h)
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvByte(h uint64, b byte) uint64 { return (h ^ uint64(b)) * fnvPrime }

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = fnvByte(h, s[i])
	}
	return h
}

func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
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
