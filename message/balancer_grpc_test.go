package message_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/go-kit/log"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/message/messagepb"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/testinfra"
)

// whoAnswers runs a message gRPC server whose sends answer a message
// whose ID is the server's address.
func whoAnswers(t *testing.T) (addr string, stop func()) {
	t.Helper()
	ln, err := grpcx.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	send := func(context.Context, any) (any, error) {
		return message.MessageResponse{Message: &message.Message{ID: addr}}, nil
	}
	gs := grpcx.NewServer(log.NewNopLogger())
	messagepb.RegisterMessageServiceServer(gs.Server, message.NewGRPCServer(message.Endpoints{SendMessageEndpoint: send, SendGroupMessageEndpoint: send}, nil, log.NewNopLogger()))
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	return addr, gs.Stop
}

// TestGRPCClientRoutesConversationsByInstanceIdentity drives the whole
// path of the distributed mode: an instancer reporting instances as they
// come and go, NewGRPCClient's hashed endpoints, real gRPC servers.
func TestGRPCClientRoutesConversationsByInstanceIdentity(t *testing.T) {
	const convs = 300
	var addrs [4]string
	var stops [4]func()
	for i := range addrs {
		addrs[i], stops[i] = whoAnswers(t)
	}
	src := testinfra.NewInstancer(addrs[0], addrs[1], addrs[2])
	conns := grpcx.NewConns()
	defer conns.Close()
	client := message.NewGRPCClient(src, conns, "", log.NewNopLogger())

	ctx := context.Background()
	route := func(i int) string {
		var m message.Message
		var err error
		if i%2 == 0 {
			m, err = client.SendGroupMessage(ctx, message.SendRequest{SenderID: "01H00000000000000000000000", GroupID: fmt.Sprintf("01J%023d", i)})
		} else {
			m, err = client.SendMessage(ctx, message.SendRequest{SenderID: "01H00000000000000000000000", ToUserID: fmt.Sprintf("01H%023d", i)})
		}
		if err != nil {
			t.Fatalf("conversation %d: %v", i, err)
		}
		return m.ID
	}
	routes := func() []string {
		out := make([]string, convs)
		for i := range out {
			out[i] = route(i)
		}
		return out
	}
	count := func(r []string, addr string) (n int) {
		for _, a := range r {
			if a == addr {
				n++
			}
		}
		return n
	}

	// Three instances share the conversations; the same set routes alike.
	three := routes()
	for _, a := range addrs[:3] {
		if count(three, a) == 0 {
			t.Fatalf("%s got no conversation of %d: %v", a, convs, three)
		}
	}
	if again := routes(); !reflect.DeepEqual(again, three) {
		t.Fatal("the same instances routed conversations differently")
	}

	// A fourth joins: conversations move only to it.
	src.Set(addrs[0], addrs[1], addrs[2], addrs[3])
	testinfra.Eventually(t, wait, "the new instance takes conversations", func() bool {
		for i := range three {
			if route(i) == addrs[3] {
				return true
			}
		}
		return false
	})
	four := routes()
	for i := range four {
		if four[i] != three[i] && four[i] != addrs[3] {
			t.Fatalf("conversation %d moved from %s to %s, not to the new instance", i, three[i], four[i])
		}
	}
	t.Logf("adding a 4th instance moved %d of %d conversations", count(four, addrs[3]), convs)

	// One leaves: only its conversations move.
	src.Set(addrs[0], addrs[2], addrs[3])
	testinfra.Eventually(t, wait, "the removed instance gets no conversation", func() bool {
		for i := range four {
			if four[i] == addrs[1] {
				return route(i) != addrs[1]
			}
		}
		return true
	})
	left := routes()
	for i := range left {
		if left[i] == addrs[1] || (four[i] != addrs[1] && left[i] != four[i]) {
			t.Fatalf("conversation %d moved from %s to %s after %s left", i, four[i], left[i], addrs[1])
		}
	}
	t.Logf("removing an instance moved %d of %d conversations (those it had)", count(four, addrs[1]), convs)

	// An instance that dies before discovery notices: its conversations
	// fall over to the instance they move to once it is removed, and the
	// others stay.
	stops[2]()
	fallover := routes()
	for i := range fallover {
		if fallover[i] == addrs[2] || (left[i] != addrs[2] && fallover[i] != left[i]) {
			t.Fatalf("conversation %d on %s went to %s while %s was down", i, left[i], fallover[i], addrs[2])
		}
	}
	src.Set(addrs[0], addrs[3])
	// Set returns once every subscriber took the event, and the client's
	// endpointers take the next event only after handling the last: when
	// this second Set returns, the removal is in effect.
	src.Set(addrs[0], addrs[3])
	if removed := routes(); !reflect.DeepEqual(removed, fallover) {
		t.Fatalf("falling over and removing the instance route differently:\n%v\n%v", fallover, removed)
	}
	t.Logf("%d conversations of the dead instance fell over to where its removal moved them", count(left, addrs[2]))
}
