package app

import (
	"github.com/beehive-im/beehive/auth"
	"github.com/beehive-im/beehive/group"
	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/presence"
	"github.com/beehive-im/beehive/pusher"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/ratelimit"
	"github.com/beehive-im/beehive/user"
)

// Backends of a serve process. Static mode keeps each process's durable
// state in its own embedded store under the data dir; the distributed
// mode (mode: distributed) uses Cassandra and Redis.

func (n *node) distributed() bool { return n.cfg.Mode == "distributed" }

func (n *node) authStore() (auth.Store, error) {
	db, err := n.store()
	if err != nil {
		return nil, err
	}
	return auth.NewPebbleStore(db), nil
}

func (n *node) userStore() (user.Store, error) {
	db, err := n.store()
	if err != nil {
		return nil, err
	}
	return user.NewPebbleStore(db), nil
}

func (n *node) groupStore() (group.Store, error) {
	db, err := n.store()
	if err != nil {
		return nil, err
	}
	return group.NewPebbleStore(db), nil
}

func (n *node) queryStore() (query.Store, error) {
	db, err := n.store()
	if err != nil {
		return nil, err
	}
	return query.NewPebbleStore(db), nil
}

func (n *node) pusherStore() (pusher.Store, error) {
	db, err := n.store()
	if err != nil {
		return nil, err
	}
	return pusher.NewPebbleStore(db), nil
}

func (n *node) presenceBackend() (presence.Backend, error) {
	return presence.NewMemoryBackend(), nil
}

func (n *node) messageState() (message.SeqAllocator, message.DedupStore, error) {
	db, err := n.store()
	if err != nil {
		return nil, nil, err
	}
	return message.NewLeasedAllocator(message.NewPebbleSeqLeaser(db), n.cfg.Message.SeqLeaseBlock), message.NewPebbleDedupStore(db), nil
}

// limiter is a per-key limit of n a minute: local to this process in
// static mode, shared through Redis when distributed.
func (n *node) limiter(prefix string, perMinute int) ratelimit.Keyed {
	return ratelimit.PerMinute(perMinute)
}
