package query_test

import (
	"context"
	"testing"
	"time"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/query"
	"github.com/beehive-im/beehive/shared/identity"
	"github.com/beehive-im/beehive/shared/ids"
)

// A read must see every message whose `sent` came before it, even while
// the persistence writer still has it in flight. The CaughtUp of these
// tests plays the writer: it stores what was "acknowledged" when called.
func newLaggingEnv(t *testing.T, caughtUp func(e *env) func(context.Context) error) *env {
	e := newEnv(t)
	e.svc = newReadSide(t, query.Deps{Store: e.store, Groups: e.groups}, query.Options{CaughtUp: caughtUp(e), CaughtUpWait: 50 * time.Millisecond})
	return e
}

func TestEveryReadSeesMessagesAcknowledgedBeforeIt(t *testing.T) {
	ctx := context.Background()
	reads := map[string]func(e *env, a, b, conv string, m message.Event) bool{
		"history": func(e *env, a, _, conv string, m message.Event) bool {
			page, err := e.svc.History(ctx, a, conv, nil, nil, 0)
			mustNil(t, err)
			return len(page.Messages) == 1 && page.Messages[0].ID == m.Message.ID
		},
		"conversations": func(e *env, _, b, conv string, _ message.Event) bool {
			page, err := e.svc.Conversations(ctx, b, "", 0)
			mustNil(t, err)
			return len(page.Conversations) == 1 && page.Conversations[0].ID == conv && page.Conversations[0].Unread == 1
		},
		"conversation": func(e *env, _, b, conv string, _ message.Event) bool {
			c, err := e.svc.Conversation(ctx, b, conv)
			mustNil(t, err)
			return c.Unread == 1
		},
		"unread": func(e *env, _, b, _ string, _ message.Event) bool {
			u, err := e.svc.Unread(ctx, b)
			mustNil(t, err)
			return u.Total == 1
		},
		"sync": func(e *env, _, b, conv string, _ message.Event) bool {
			res, err := e.svc.Sync(ctx, b, map[string]int64{conv: 0}, 0)
			mustNil(t, err)
			return len(res.Conversations) == 1 && len(res.Conversations[0].Messages) == 1
		},
		"get message (recall looks the original up)": func(e *env, _, _, _ string, m message.Event) bool {
			got, err := e.svc.GetMessage(ctx, m.Message.ID)
			return err == nil && got.ID == m.Message.ID
		},
	}
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			u := users(2)
			a, b := u[0], u[1]
			conv := ids.P2P(a, b)
			m := msgEvent(conv, a, 1)
			var pending []message.Event
			e := newLaggingEnv(t, func(e *env) func(context.Context) error {
				return func(context.Context) error {
					e.apply(pending...)
					pending = nil
					return nil
				}
			})
			pending = append(pending, m) // acknowledged, not yet stored
			if !read(e, a, b, conv, m) {
				t.Fatal("the read missed a message acknowledged before it")
			}
		})
	}
}

func TestReadsGoOnWhenTheWriterLagsTooLong(t *testing.T) {
	ctx := context.Background()
	e := newLaggingEnv(t, func(*env) func(context.Context) error {
		return func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	})
	u := users(2)
	a, b := u[0], u[1]
	conv := ids.P2P(a, b)
	e.apply(msgEvent(conv, a, 1))
	page, err := e.svc.History(ctx, b, conv, nil, nil, 0)
	mustNil(t, err)
	if len(page.Messages) != 1 {
		t.Fatalf("history has %d messages, want the stored one", len(page.Messages))
	}
	if _, err := e.svc.Unread(ctx, b); err != nil {
		t.Fatal(err)
	}
}

// A service asking about a conversation on its own behalf (the pusher:
// is it muted?) does not wait for the writer: a history writer behind must
// not slow delivery. A user still waits.
func TestAServiceAskingForAConversationDoesNotWaitForTheWriter(t *testing.T) {
	waited := 0
	e := newLaggingEnv(t, func(*env) func(context.Context) error {
		return func(ctx context.Context) error {
			waited++
			<-ctx.Done() // the writer never catches up
			return ctx.Err()
		}
	})
	u := users(2)
	a, b := u[0], u[1]
	conv := ids.P2P(a, b)
	mustNil(t, e.store.Apply(context.Background(), query.BatchOf([]message.Event{msgEvent(conv, a, 1)})))
	if _, err := e.svc.Conversation(identity.AsService(context.Background()), b, conv); err != nil {
		t.Fatal(err)
	}
	if waited != 0 {
		t.Fatalf("a service's read waited for the writer %d times", waited)
	}
	if _, err := e.svc.Conversation(context.Background(), b, conv); err != nil {
		t.Fatal(err)
	}
	if waited != 1 {
		t.Fatalf("a user's read waited %d times, want 1", waited)
	}
}
