package presence

import (
	"context"

	"github.com/beehive-im/beehive/shared/identity"
)

// Asker answers where users are connected for other services (the
// pusher), over a Service — in the same process or a client of a remote
// one — as internal calls.
type Asker struct{ svc Service }

// NewAsker asks svc.
func NewAsker(svc Service) Asker { return Asker{svc: svc} }

// Devices returns the connected devices of each online user among
// userIDs, asking MaxBatch ids at a time: a group's recipients can be many
// more than one query may name.
func (a Asker) Devices(ctx context.Context, userIDs []string) (map[string][]Device, error) {
	out := make(map[string][]Device)
	for start := 0; start < len(userIDs); start += MaxBatch {
		ups, err := a.svc.GetUserPresence(identity.AsService(ctx), userIDs[start:min(start+MaxBatch, len(userIDs))])
		if err != nil {
			return nil, err
		}
		for _, up := range ups {
			if len(up.Devices) > 0 {
				out[up.UserID] = append(out[up.UserID], up.Devices...)
			}
		}
	}
	return out, nil
}
