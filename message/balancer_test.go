package message

import (
	"context"
	"fmt"
	"math/rand"
	"testing"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/ids"
)

// fixedInstances is an instance set that does not change.
type fixedInstances []grpcx.Instance

func (f fixedInstances) Instances() ([]grpcx.Instance, error) { return f, nil }

// answering makes instances whose endpoint answers its own address.
func answering(addrs ...string) fixedInstances {
	out := make(fixedInstances, len(addrs))
	for i, a := range addrs {
		a := a
		out[i] = grpcx.Instance{Addr: a, Endpoint: func(context.Context, any) (any, error) { return a, nil }}
	}
	return out
}

// simKeys are n conversations' send requests, half 1:1, half group, with
// ids that differ only in their last characters (a hash that mixes poorly
// shows it on such keys).
func simKeys(n int) []SendMessageRequest {
	out := make([]SendMessageRequest, n)
	for i := range out {
		if i%2 == 0 {
			out[i] = SendMessageRequest{SendRequest: SendRequest{GroupID: fmt.Sprintf("01J%023d", i)}}
		} else {
			out[i] = SendMessageRequest{SendRequest: SendRequest{SenderID: fmt.Sprintf("01H%023d", i), ToUserID: fmt.Sprintf("01H%023d", i+7)}}
		}
	}
	return out
}

// owners routes every request through the balancer over ins and returns
// the address each landed on, by conversation.
func owners(t *testing.T, ins fixedInstances, reqs []SendMessageRequest) map[string]string {
	t.Helper()
	e, err := newConversationHash(ins).Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(reqs))
	for _, r := range reqs {
		got, err := e(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		out[routingKey(context.Background(), r)] = got.(string)
	}
	return out
}

func without(addrs []string, i int) []string {
	return append(append([]string(nil), addrs[:i]...), addrs[i+1:]...)
}

// instanceStyles are address sets as deployments report them.
var instanceStyles = map[string]func(i int) string{
	"ip":       func(i int) string { return fmt.Sprintf("10.0.1.%d:9090", i+10) },
	"hostname": func(i int) string { return fmt.Sprintf("beehive-message-%d.beehive.svc:9090", i) },
	"port":     func(i int) string { return fmt.Sprintf("127.0.0.1:%d", 7301+i) },
}

func TestConversationHashMovesOnlyTheShareOfTheInstanceThatLeavesOrJoins(t *testing.T) {
	const keys, slack = 20000, 0.03
	reqs := simKeys(keys)
	for style, addr := range instanceStyles {
		for _, n := range []int{3, 4, 5} {
			t.Run(fmt.Sprintf("%s/N=%d", style, n), func(t *testing.T) {
				var addrs []string
				for i := 0; i < n; i++ {
					addrs = append(addrs, addr(i))
				}
				before := owners(t, answering(addrs...), reqs)
				if len(before) != keys {
					t.Fatalf("%d distinct conversations, want %d", len(before), keys)
				}
				share := map[string]int{}
				for _, a := range before {
					share[a]++
				}
				for _, a := range addrs {
					if f := float64(share[a]) / keys; f < 1/float64(n)-slack || f > 1/float64(n)+slack {
						t.Errorf("%s owns %.1f%% of conversations, want %.1f%% ± %.0f%%", a, 100*f, 100/float64(n), 100*slack)
					}
				}

				for r := range addrs {
					after := owners(t, answering(without(addrs, r)...), reqs)
					moved := 0
					for k, was := range before {
						if after[k] == was {
							continue
						}
						moved++
						if was != addrs[r] {
							t.Fatalf("removing %s moved %s from %s, which stayed", addrs[r], k, was)
						}
					}
					f := float64(moved) / keys
					t.Logf("remove %s: %.2f%% moved (ideal %.2f%%)", addrs[r], 100*f, 100/float64(n))
					if f > 1/float64(n)+slack {
						t.Errorf("removing %s of %d moved %.2f%%, want ≤ %.2f%%", addrs[r], n, 100*f, 100*(1/float64(n)+slack))
					}
				}

				added := addr(n)
				after := owners(t, answering(append(append([]string(nil), addrs...), added)...), reqs)
				moved := 0
				for k, was := range before {
					if after[k] == was {
						continue
					}
					moved++
					if after[k] != added {
						t.Fatalf("adding %s moved %s from %s to %s", added, k, was, after[k])
					}
				}
				f := float64(moved) / keys
				t.Logf("add %s: %.2f%% moved (ideal %.2f%%)", added, 100*f, 100/float64(n+1))
				if f > 1/float64(n+1)+slack {
					t.Errorf("adding a %dth instance moved %.2f%%, want ≤ %.2f%%", n+1, 100*f, 100*(1/float64(n+1)+slack))
				}
			})
		}
	}
}

func TestConversationHashIgnoresTheOrderOfInstances(t *testing.T) {
	reqs := simKeys(20000)
	addrs := []string{"10.0.1.10:9090", "10.0.1.11:9090", "10.0.1.12:9090", "10.0.1.13:9090", "10.0.1.14:9090"}
	want := owners(t, answering(addrs...), reqs)
	rng := rand.New(rand.NewSource(1))
	for round := 0; round < 5; round++ {
		shuffled := append([]string(nil), addrs...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got := owners(t, answering(shuffled...), reqs)
		for k, w := range want {
			if got[k] != w {
				t.Fatalf("order %v sends %s to %s, sorted order to %s", shuffled, k, got[k], w)
			}
		}
	}
}

func TestConversationHashFallsOverAlongTheConversationsRanking(t *testing.T) {
	addrs := []string{"10.0.1.10:9090", "10.0.1.11:9090", "10.0.1.12:9090"}
	req := SendMessageRequest{SendRequest: SendRequest{GroupID: "01J00000000000000000000042"}}
	key := routingKey(context.Background(), req)
	order := rank(key, answering(addrs...))
	first, second, third := addrs[order[0]], addrs[order[1]], addrs[order[2]]

	// The instance a conversation falls over to is the one it moves to
	// when its instance leaves.
	if moved := owners(t, answering(without(addrs, order[0])...), []SendMessageRequest{req})[key]; moved != second {
		t.Fatalf("removing %s moves %s to %s, but its ranking says %s", first, key, moved, second)
	}

	failing := func(fail map[string]error) (fixedInstances, *[]string) {
		var tried []string
		ins := make(fixedInstances, len(addrs))
		for i, a := range addrs {
			a := a
			ins[i] = grpcx.Instance{Addr: a, Endpoint: func(context.Context, any) (any, error) {
				tried = append(tried, a)
				if err := fail[a]; err != nil {
					return nil, err
				}
				return a, nil
			}}
		}
		return ins, &tried
	}
	unavailable := errs.New(errs.Unavailable, "connection refused")
	for _, tc := range []struct {
		name      string
		fail      map[string]error
		wantResp  any
		wantCode  errs.Code
		wantTried []string
	}{
		{"the first answers", nil, first, "", []string{first}},
		{"an unavailable first falls over to the second", map[string]error{first: unavailable}, second, "", []string{first, second}},
		{"two unavailable fall over to the third", map[string]error{first: unavailable, second: unavailable}, third, "", []string{first, second, third}},
		{"a business refusal is not retried elsewhere", map[string]error{first: errs.New(errs.PermissionDenied, "blocked")}, nil, errs.PermissionDenied, []string{first}},
		{"all unavailable returns the last failure", map[string]error{first: unavailable, second: unavailable, third: unavailable}, nil, errs.Unavailable, []string{first, second, third}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ins, tried := failing(tc.fail)
			e, err := newConversationHash(ins).Endpoint()
			if err != nil {
				t.Fatal(err)
			}
			resp, err := e(context.Background(), req)
			if resp != tc.wantResp || (tc.wantCode == "" && err != nil) || (tc.wantCode != "" && !errs.HasCode(err, tc.wantCode)) {
				t.Fatalf("got %v %v, want %v %q", resp, err, tc.wantResp, tc.wantCode)
			}
			if fmt.Sprint(*tried) != fmt.Sprint(tc.wantTried) {
				t.Fatalf("tried %v, want %v", *tried, tc.wantTried)
			}
		})
	}
}

func TestConversationHashWithoutInstancesHasNoEndpoint(t *testing.T) {
	if _, err := newConversationHash(fixedInstances{}).Endpoint(); err == nil {
		t.Fatal("no instances must fail (lb.ErrNoEndpoints, which grpcx.Balanced retries)")
	}
}

// A 1:1 conversation is routed the same whichever side sends.
func TestRoutingKeyIsTheConversation(t *testing.T) {
	a, b := "01H00000000000000000000001", "01H00000000000000000000002"
	ab := routingKey(context.Background(), SendMessageRequest{SendRequest: SendRequest{SenderID: a, ToUserID: b}})
	ba := routingKey(context.Background(), SendMessageRequest{SendRequest: SendRequest{SenderID: b, ToUserID: a}})
	if ab != ids.P2P(a, b) || ba != ab {
		t.Fatalf("routing keys %q %q, want %q", ab, ba, ids.P2P(a, b))
	}
}
