package gateway_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/beehive-im/beehive/gateway"
	"github.com/beehive-im/beehive/message"
)

// escapeAll writes s as a JSON string with every byte as \u00XX, the
// longest encoding a JSON encoder may choose for ASCII.
func escapeAll(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, `\u%04x`, s[i])
	}
	b.WriteByte('"')
	return b.String()
}

func TestSendFrameBoundCoversTheWorstEncodedSendFrame(t *testing.T) {
	lim := message.Limits{TextLimit: message.DefaultTextLimit, ObjectLimit: message.DefaultObjectLimit, MaxMentions: message.DefaultMaxMentions}
	id := escapeAll(strings.Repeat("a", 64))
	mentions := make([]string, lim.MaxMentions)
	for i := range mentions {
		mentions[i] = id
	}
	envelope := func(content string) string {
		return `{"op":"send","id":"` + strings.Repeat("f", 128) + `","data":{"to_user_id":` + id +
			`,"client_msg_id":` + id + `,"type":` + escapeAll(message.TypeCustom) +
			`,"content":` + content + `,"mentions":[` + strings.Join(mentions, ",") + `]}}`
	}
	text := envelope(escapeAll(strings.Repeat("<", lim.TextLimit)))
	object := envelope(`{"x":"` + strings.Repeat("y", lim.ObjectLimit-8) + `"}`)
	bound := gateway.SendFrameBound(lim)
	for name, frame := range map[string]string{"escaped text": text, "object": object} {
		if !json.Valid([]byte(frame)) {
			t.Fatalf("%s: test frame is not JSON", name)
		}
		if int64(len(frame)) > bound {
			t.Errorf("%s frame of %d bytes exceeds SendFrameBound %d", name, len(frame), bound)
		}
	}
	if bound > gateway.DefaultFrameLimit {
		t.Fatalf("SendFrameBound %d at the message defaults exceeds DefaultFrameLimit %d", bound, gateway.DefaultFrameLimit)
	}
}
