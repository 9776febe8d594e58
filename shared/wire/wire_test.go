package wire_test

import (
	"encoding/json"
	"testing"

	"github.com/beehive-im/beehive/shared/wire"
)

// The bytes clients get are the protocol: these pin them.
func TestEncodeWritesTheFramesOfProtocolMD(t *testing.T) {
	type msg struct {
		ID  string `json:"id"`
		Seq int64  `json:"seq"`
	}
	seq := int64(0)
	for _, tc := range []struct {
		name string
		op   string
		id   json.RawMessage
		data any
		want string
	}{
		{"sent echoes a string id", wire.OpSent, json.RawMessage(`"f-1"`), wire.MessageData[msg]{Message: msg{"m1", 3}}, `{"op":"sent","id":"f-1","data":{"message":{"id":"m1","seq":3}}}`},
		{"message through a pointer", wire.OpMessage, nil, wire.MessageData[*msg]{Message: &msg{"m1", 3}}, `{"op":"message","data":{"message":{"id":"m1","seq":3}}}`},
		{"pong echoes a number id and has no data", wire.OpPong, json.RawMessage(`12`), nil, `{"op":"pong","id":12}`},
		{"recalled", wire.OpRecalled, nil, wire.RecalledData{ConversationID: "c", MessageID: "m", Seq: 9}, `{"op":"recalled","data":{"conversation_id":"c","message_id":"m","seq":9}}`},
		{"receipt", wire.OpReceipt, nil, wire.ReceiptData{ConversationID: "c", UserID: "u", ReadSeq: 4}, `{"op":"receipt","data":{"conversation_id":"c","user_id":"u","read_seq":4}}`},
		{"typing", wire.OpTyping, nil, wire.TypingData{ConversationID: "c", UserID: "u"}, `{"op":"typing","data":{"conversation_id":"c","user_id":"u"}}`},
		{"presence offline keeps online", wire.OpPresence, nil, wire.PresenceData{UserID: "u"}, `{"op":"presence","data":{"user_id":"u","online":false}}`},
		{"synced keeps has_more", wire.OpSynced, json.RawMessage(`"s"`), wire.SyncedData{}, `{"op":"synced","id":"s","data":{"has_more":false}}`},
		{"error with field", wire.OpError, json.RawMessage(`"e"`), wire.ErrorData{Code: "invalid_argument", Message: "bad", Field: "seq"}, `{"op":"error","id":"e","data":{"code":"invalid_argument","message":"bad","field":"seq"}}`},
		{"error without field", wire.OpError, nil, wire.ErrorData{Code: "rate_limited", Message: "slow"}, `{"op":"error","data":{"code":"rate_limited","message":"slow"}}`},
		{"client send leaves the other recipient out", wire.OpSend, json.RawMessage(`"7"`), wire.SendData{GroupID: "g", ClientMsgID: "c", Type: "text", Content: json.RawMessage(`"x"`)}, `{"op":"send","id":"7","data":{"group_id":"g","client_msg_id":"c","type":"text","content":"x"}}`},
		{"client ack", wire.OpAck, nil, wire.SeqData{ConversationID: "c", Seq: &seq}, `{"op":"ack","data":{"conversation_id":"c","seq":0}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := wire.Encode(tc.op, tc.id, tc.data)
			if err != nil || string(got) != tc.want {
				t.Fatalf("Encode = %s, %v; want %s", got, err, tc.want)
			}
			if tc.id == nil {
				again, _ := wire.EncodeFrame(tc.op, tc.data)
				if string(again) != tc.want {
					t.Fatalf("EncodeFrame = %s, want %s", again, tc.want)
				}
			}
		})
	}
}

func TestFrameDecodesWhatEncodeWrites(t *testing.T) {
	b, _ := wire.Encode(wire.OpTyping, json.RawMessage(`5`), wire.TypingRequestData{ConversationID: "c"})
	var f wire.Frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var d wire.TypingRequestData
	if err := json.Unmarshal(f.Data, &d); err != nil || f.Op != wire.OpTyping || string(f.ID) != "5" || d.ConversationID != "c" {
		t.Fatalf("frame %+v data %+v (%v)", f, d, err)
	}
}

func TestDeliverRequestJSONLeavesEmptyPartsOut(t *testing.T) {
	b, _ := json.Marshal(wire.DeliverRequest{UserIDs: []string{"u"}, Frame: []byte(`{}`)})
	if want := `{"user_ids":["u"],"frame":"e30="}`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
}
