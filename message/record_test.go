package message_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/beehive-im/beehive/message"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/kafkax"
)

// recordOf is the record the producer writes for ev: key and JSON value.
func recordOf(t *testing.T, ev message.Event) (key, value []byte) {
	t.Helper()
	v, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(ev.ConversationID), v
}

func TestDecodeRecordAcceptsWhatTheProducerWrites(t *testing.T) {
	a, b := ids.New(), ids.New()
	p2p, grp := ids.P2P(a, b), ids.Group(ids.New())
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	entry := func(conv string, seq int64, typ string) *message.Message {
		return &message.Message{ID: ids.New(), ConversationID: conv, Seq: seq, SenderID: a, Type: typ, Content: json.RawMessage(`"hi"`), SentAt: at}
	}
	cases := map[string]message.Event{
		"1:1 message":   {Version: message.EventVersion, Kind: message.EventMessage, ConversationID: p2p, Message: entry(p2p, 1, message.TypeText), At: at},
		"group message": {Version: message.EventVersion, Kind: message.EventMessage, ConversationID: grp, Message: entry(grp, 9, message.TypeText), At: at},
		"recall": {Version: message.EventVersion, Kind: message.EventRecall, ConversationID: p2p, Message: entry(p2p, 5, message.TypeRecall),
			RecalledID: ids.New(), RecalledSeq: 4, At: at},
		"1:1 read":   {Version: message.EventVersion, Kind: message.EventRead, ConversationID: p2p, UserID: b, ReadSeq: 3, At: at},
		"group read": {Version: message.EventVersion, Kind: message.EventRead, ConversationID: grp, UserID: ids.New(), ReadSeq: 3, At: at},
	}
	for name, ev := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := message.DecodeRecord(recordOf(t, ev))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			want, _ := json.Marshal(ev)
			if have, _ := json.Marshal(got); string(have) != string(want) {
				t.Fatalf("decoded %s\nwant     %s", have, want)
			}
		})
	}
	t.Run("an entry without conversation id gets the event's", func(t *testing.T) {
		ev := cases["1:1 message"]
		m := *ev.Message
		m.ConversationID = ""
		ev.Message = &m
		got, err := message.DecodeRecord(recordOf(t, ev))
		if err != nil || got.Message.ConversationID != p2p {
			t.Fatalf("got %+v, %v", got.Message, err)
		}
	})
}

func TestDecodeRecordRefusesEveryMalformedShapeAsPoison(t *testing.T) {
	a, b, c := ids.New(), ids.New(), ids.New()
	p2p, grp := ids.P2P(a, b), ids.Group(ids.New())
	entry := func(seq int64) *message.Message {
		return &message.Message{ID: ids.New(), ConversationID: p2p, Seq: seq, SenderID: a, Type: message.TypeText, Content: json.RawMessage(`"x"`)}
	}
	msg := func(edit func(*message.Event)) message.Event {
		ev := message.Event{Version: message.EventVersion, Kind: message.EventMessage, ConversationID: p2p, Message: entry(2)}
		edit(&ev)
		return ev
	}
	recall := func(edit func(*message.Event)) message.Event {
		ev := message.Event{Version: message.EventVersion, Kind: message.EventRecall, ConversationID: p2p, Message: entry(5), RecalledID: ids.New(), RecalledSeq: 4}
		ev.Message.Type = message.TypeRecall
		edit(&ev)
		return ev
	}
	read := func(edit func(*message.Event)) message.Event {
		ev := message.Event{Version: message.EventVersion, Kind: message.EventRead, ConversationID: p2p, UserID: b, ReadSeq: 3}
		edit(&ev)
		return ev
	}
	type rec struct{ key, value string }
	raw := func(ev message.Event) rec {
		v, _ := json.Marshal(ev)
		return rec{ev.ConversationID, string(v)}
	}
	withKey := func(key string, ev message.Event) rec { r := raw(ev); r.key = key; return r }
	cases := map[string]rec{
		"empty value":               {p2p, ""},
		"not json":                  {p2p, "{nope"},
		"json but not an object":    {p2p, `[1,2]`},
		"wrong field type":          {p2p, `{"v":"1","kind":"message"}`},
		"no version":                raw(msg(func(e *message.Event) { e.Version = 0 })),
		"newer version":             raw(msg(func(e *message.Event) { e.Version = message.EventVersion + 1 })),
		"negative version":          raw(msg(func(e *message.Event) { e.Version = -1 })),
		"no conversation id":        withKey("", msg(func(e *message.Event) { e.ConversationID = ""; e.Message.ConversationID = "" })),
		"malformed conversation id": raw(msg(func(e *message.Event) { e.ConversationID = "x:1"; e.Message.ConversationID = "" })),
		"unordered 1:1 id": raw(msg(func(e *message.Event) {
			e.ConversationID = "p:" + max(a, b) + ":" + min(a, b)
			e.Message.ConversationID = ""
		})),
		"no key":                            withKey("", msg(func(*message.Event) {})),
		"key of another conversation":       withKey(grp, msg(func(*message.Event) {})),
		"unknown kind":                      raw(msg(func(e *message.Event) { e.Kind = "teleport" })),
		"no kind":                           raw(msg(func(e *message.Event) { e.Kind = "" })),
		"message without entry":             raw(msg(func(e *message.Event) { e.Message = nil })),
		"message with seq 0":                raw(msg(func(e *message.Event) { e.Message.Seq = 0 })),
		"message with negative seq":         raw(msg(func(e *message.Event) { e.Message.Seq = -3 })),
		"message without id":                raw(msg(func(e *message.Event) { e.Message.ID = "" })),
		"message with malformed id":         raw(msg(func(e *message.Event) { e.Message.ID = "bad id!" })),
		"message without sender":            raw(msg(func(e *message.Event) { e.Message.SenderID = "" })),
		"message with malformed sender":     raw(msg(func(e *message.Event) { e.Message.SenderID = "a/b" })),
		"message of another conversation":   raw(msg(func(e *message.Event) { e.Message.ConversationID = grp })),
		"recall without entry":              raw(recall(func(e *message.Event) { e.Message = nil })),
		"recall with seq 0":                 raw(recall(func(e *message.Event) { e.Message.Seq = 0 })),
		"recall with malformed sender":      raw(recall(func(e *message.Event) { e.Message.SenderID = "" })),
		"recall of another conversation":    raw(recall(func(e *message.Event) { e.Message.ConversationID = grp })),
		"recall without recalled id":        raw(recall(func(e *message.Event) { e.RecalledID = "" })),
		"recall with malformed recalled id": raw(recall(func(e *message.Event) { e.RecalledID = "no way" })),
		"recall without recalled seq":       raw(recall(func(e *message.Event) { e.RecalledSeq = 0 })),
		"recall of its own seq":             raw(recall(func(e *message.Event) { e.RecalledSeq = 5 })),
		"recall of a later seq":             raw(recall(func(e *message.Event) { e.RecalledSeq = 6 })),
		"read without reader":               raw(read(func(e *message.Event) { e.UserID = "" })),
		"read with malformed reader":        raw(read(func(e *message.Event) { e.UserID = "b:c" })),
		"read with seq 0":                   raw(read(func(e *message.Event) { e.ReadSeq = 0 })),
		"read with negative seq":            raw(read(func(e *message.Event) { e.ReadSeq = -1 })),
		"1:1 read by a non-participant":     raw(read(func(e *message.Event) { e.UserID = c })),
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			ev, err := message.DecodeRecord([]byte(r.key), []byte(r.value))
			if err == nil {
				t.Fatalf("accepted %+v", ev)
			}
			if !errors.Is(err, kafkax.ErrPoison) || !errors.Is(err, message.ErrBadRecord) {
				t.Fatalf("err = %v, want ErrPoison and ErrBadRecord", err)
			}
			if ev.Kind != "" || ev.Message != nil {
				t.Fatalf("a refused record returned an event: %+v", ev)
			}
		})
	}
}
