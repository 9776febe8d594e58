package message_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/go-kit/log"
	"github.com/segmentio/kafka-go"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/kafkax"
	"github.com/beehive-im/beehive/shared/testinfra"
)

const wait = 30 * time.Second

// relations is a test double of the user service's "may A message B?".
type relations struct {
	mu      sync.Mutex
	blocked map[[2]string]bool
	err     error
}

func (r *relations) CanMessage(_ context.Context, from, to string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return false, r.err
	}
	return !r.blocked[[2]string{from, to}], nil
}

// groups is a test double of the group service: members with roles, muted
// members who may not post.
type groups struct {
	mu    sync.Mutex
	roles map[string]map[string]string // group -> user -> role
	muted map[string]bool              // user
}

func (g *groups) CanPost(_ context.Context, userID, groupID string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.roles[groupID]; !ok {
		return errs.New(errs.NotFound, "group not found")
	}
	if _, ok := g.roles[groupID][userID]; !ok {
		return errs.New(errs.PermissionDenied, "not a member")
	}
	if g.muted[userID] {
		return errs.New(errs.PermissionDenied, "muted")
	}
	return nil
}

func (g *groups) Role(_ context.Context, groupID, userID string) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.roles[groupID][userID]
	if !ok {
		return "", errs.New(errs.PermissionDenied, "not a member")
	}
	return r, nil
}

func (g *groups) IsMember(_ context.Context, groupID, userID string) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.roles[groupID][userID]
	return ok, nil
}

// reader is a test double of the query side: what was sent, by id.
type reader struct {
	mu   sync.Mutex
	msgs map[string]message.Message
}

func (r *reader) GetMessage(_ context.Context, id string) (message.Message, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.msgs[id]
	if !ok {
		return message.Message{}, errs.New(errs.NotFound, "message not found")
	}
	return m, nil
}

func (r *reader) put(m message.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs[m.ID] = m
}

type env struct {
	svc       message.Service
	brokers   []string
	relations *relations
	groups    *groups
	reader    *reader
	clock     *testinfra.Clock
	db        *pebble.DB
	alice     string
	bob       string
	carol     string
	group     string
}

type envOpt func(*message.Options)

// newEnv runs the service over the embedded broker and Pebble, as the
// embedded mode does; peers are test doubles.
func newEnv(tb testing.TB, opts ...envOpt) *env {
	tb.Helper()
	broker, err := kafkax.StartEmbedded(tb.TempDir(), "127.0.0.1:0", log.NewNopLogger())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = broker.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, broker.Brokers(), kafkax.DefaultTopics(4, 1)); err != nil {
		tb.Fatal(err)
	}
	w := kafkax.NewWriter(broker.Brokers(), kafkax.TopicMessages, 2*time.Millisecond)
	tb.Cleanup(func() { _ = w.Close() })
	tw := kafkax.NewWriter(broker.Brokers(), kafkax.TopicTyping, 2*time.Millisecond)
	tb.Cleanup(func() { _ = tw.Close() })
	db := testinfra.OpenPebble(tb, tb.TempDir())
	tb.Cleanup(func() { _ = db.Close() })

	e := &env{
		brokers:   broker.Brokers(),
		relations: &relations{blocked: map[[2]string]bool{}},
		groups:    &groups{roles: map[string]map[string]string{}, muted: map[string]bool{}},
		reader:    &reader{msgs: map[string]message.Message{}},
		clock:     testinfra.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
		db:        db,
		alice:     ids.New(), bob: ids.New(), carol: ids.New(), group: ids.New(),
	}
	e.groups.roles[e.group] = map[string]string{e.alice: "owner", e.bob: "admin", e.carol: "member"}
	o := message.Options{Now: e.clock.Now}
	for _, f := range opts {
		f(&o)
	}
	e.svc = newMessages(tb, message.Deps{
		Relations: e.relations, Groups: e.groups, Reader: e.reader,
		Seqs:  message.NewLeasedAllocator(message.NewPebbleSeqLeaser(db), 0),
		Dedup: message.NewPebbleDedupStore(db), Producer: message.NewKafkaProducer(w), Signals: message.NewKafkaProducer(tw),
	}, o)
	return e
}

func newMessages(t testing.TB, deps message.Deps, opts message.Options) *message.Messages {
	t.Helper()
	svc, err := message.New(deps, opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func textContent(s string) json.RawMessage { b, _ := json.Marshal(s); return b }

func (e *env) sendText(tb testing.TB, from, to, cmid, text string) message.Message {
	tb.Helper()
	m, err := e.svc.SendMessage(context.Background(), message.SendRequest{SenderID: from, ToUserID: to, ClientMsgID: cmid, Type: message.TypeText, Content: textContent(text)})
	if err != nil {
		tb.Fatalf("SendMessage: %v", err)
	}
	return m
}

// events reads every record of beehive.messages, in partition order.
func (e *env) events(t *testing.T) []message.Event {
	t.Helper()
	var out []message.Event
	for _, m := range e.records(t, kafkax.TopicMessages) {
		// Every record the service writes must pass the topic's decoder.
		ev, err := message.DecodeRecord(m.Key, m.Value)
		if err != nil {
			t.Fatalf("record %d: %v", m.Offset, err)
		}
		out = append(out, ev)
	}
	return out
}

// typings reads every record of beehive.typing, in partition order.
func (e *env) typings(t *testing.T) []message.TypingRecord {
	t.Helper()
	var out []message.TypingRecord
	for _, m := range e.records(t, kafkax.TopicTyping) {
		r, err := message.DecodeTypingRecord(m.Key, m.Value)
		if err != nil {
			t.Fatalf("typing record %d: %v", m.Offset, err)
		}
		out = append(out, r)
	}
	return out
}

// records reads every record of topic, in partition order.
func (e *env) records(t *testing.T, topic string) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for p := 0; p < 4; p++ {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		conn, err := kafka.DialLeader(ctx, "tcp", e.brokers[0], topic, p)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		_ = conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		ctx, cancel = context.WithTimeout(context.Background(), wait)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
			if m.Offset == last-1 {
				break
			}
		}
		cancel()
		_ = r.Close()
	}
	return out
}
