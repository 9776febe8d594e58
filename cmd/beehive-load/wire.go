package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/beehive-im/beehive/shared/wire"
)

// The client protocol (frames, ops, payloads) is package wire's.

// The parent and its workers speak JSON lines: the parent writes an
// assignment and then commands to a worker's stdin; the worker writes
// events to its stdout (its stderr is the parent's, for diagnostics).

// assignment is a worker's share of a run.
type assignment struct {
	Worker   int    `json:"worker"`
	Scenario string `json:"scenario"`
	WSURL    string `json:"ws_url"` // ws://host:port/v1/ws
	// DialConcurrency is how many handshakes a worker keeps in flight.
	DialConcurrency int `json:"dial_concurrency"`
	// BufferSize of each socket's read and write buffers.
	BufferSize int `json:"buffer_size"`

	// sockets: one socket per entry.
	Sockets []sockSpec `json:"sockets,omitempty"`

	// chat: pairs local to this worker, at Rate msgs/s over them.
	Pairs []pair `json:"pairs,omitempty"`
	// group: the group, the senders (only in the worker that sends) and
	// the members this worker holds.
	GroupID string `json:"group_id,omitempty"`
	Senders []user `json:"senders,omitempty"`
	Members []user `json:"members,omitempty"`

	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration"`
	Drain    time.Duration `json:"drain"`
	Pad      int           `json:"pad"`

	// Resync makes every chat device behave like a real client: reconnect
	// with backoff, sync, retry unanswered sends (see resync.go). HTTPAddr
	// is the API base for logging in again.
	Resync   bool   `json:"resync,omitempty"`
	HTTPAddr string `json:"http_addr,omitempty"`
}

type sockSpec struct {
	User   user   `json:"user"`
	Device string `json:"device"`
}

type pair struct {
	A user `json:"a"`
	B user `json:"b"`
}

// command is a parent -> worker line.
type command struct {
	Cmd string `json:"cmd"` // start | drain | stop
	// At is when a run starts (start), so every worker starts together.
	At time.Time `json:"at,omitempty"`
	// Expect lists the group messages the sender had acknowledged (drain).
	Expect []int64 `json:"expect,omitempty"`
}

// event is a worker -> parent line.
type event struct {
	Event  string        `json:"event"` // ready | sender_done | result | fatal
	Worker int           `json:"worker"`
	Result *workerResult `json:"result,omitempty"`
	Error  string        `json:"error,omitempty"`
}

// workerResult is everything a worker measured; the parent merges them.
type workerResult struct {
	Worker int `json:"worker"`

	// Connecting.
	Connected   int            `json:"connected"`
	DialFailed  int            `json:"dial_failed"`
	DialErrors  map[string]int `json:"dial_errors,omitempty"`
	DialSample  string         `json:"dial_error_sample,omitempty"`
	DialLatency *hist          `json:"dial_latency"`
	DialSeconds float64        `json:"dial_seconds"`
	// Closed counts sockets the server closed, by close code.
	Closed map[string]int `json:"closed,omitempty"`
	// OpenAtEnd is how many sockets were still open when the worker stopped.
	OpenAtEnd int `json:"open_at_end"`

	// Chat and group.
	Sent            int64          `json:"sent"`
	Acked           int64          `json:"acked"`
	SendErrors      map[string]int `json:"send_errors,omitempty"`
	SentLatency     *hist          `json:"sent_latency,omitempty"`
	DeliveryLatency *hist          `json:"delivery_latency,omitempty"`
	Received        int64          `json:"received"`
	Duplicates      int64          `json:"duplicates"`
	OutOfOrder      int64          `json:"out_of_order"`
	Missing         int64          `json:"missing"`
	Unexpected      int64          `json:"unexpected"`
	SeqGaps         int64          `json:"seq_gaps"`
	MaxLagMS        float64        `json:"max_schedule_lag_ms"`
	RunSeconds      float64        `json:"run_seconds"`
	DrainSeconds    float64        `json:"drain_seconds"`
	DrainTimedOut   bool           `json:"drain_timed_out,omitempty"`
	// Timeline holds, per second of the run (by the time a frame was
	// read), what was acknowledged and delivered: a backlog building up
	// shows as delivery latency growing second by second.
	Timeline []second `json:"timeline,omitempty"`
	// AckedIdx lists the group messages the sender had acknowledged.
	AckedIdx []int64 `json:"acked_idx,omitempty"`
	// FanOut maps a group message index to [members reached, slowest
	// delivery in µs] among this worker's members.
	FanOut map[int64][2]int64 `json:"fan_out,omitempty"`
	// Resync is what reconnecting and syncing did (--resync only).
	Resync *resyncStats `json:"resync,omitempty"`
}

// The content of every load message carries its send time and index, so
// latency is measured from what arrives — no bookkeeping keyed by frame
// — and a receiver in another process can measure it too (one machine,
// one clock).
func encodeContent(sentAt time.Time, idx int64, pad int) string {
	var b strings.Builder
	b.Grow(48 + pad)
	b.WriteString("lt=")
	b.WriteString(strconv.FormatInt(sentAt.UnixNano(), 10))
	b.WriteString(";k=")
	b.WriteString(strconv.FormatInt(idx, 10))
	b.WriteString(";")
	for i := 0; i < pad; i++ {
		b.WriteByte('x')
	}
	return b.String()
}

// decodeContent reads what encodeContent wrote; ok is false for anything
// else (a message not sent by this tool).
func decodeContent(raw json.RawMessage) (sentAt time.Time, idx int64, ok bool) {
	var s string
	if json.Unmarshal(raw, &s) != nil || !strings.HasPrefix(s, "lt=") {
		return time.Time{}, 0, false
	}
	ts, rest, found := strings.Cut(s[3:], ";k=")
	if !found {
		return time.Time{}, 0, false
	}
	ks, _, found := strings.Cut(rest, ";")
	if !found {
		return time.Time{}, 0, false
	}
	ns, err1 := strconv.ParseInt(ts, 10, 64)
	k, err2 := strconv.ParseInt(ks, 10, 64)
	if err1 != nil || err2 != nil {
		return time.Time{}, 0, false
	}
	return time.Unix(0, ns), k, true
}

// loadMessage is what the tool reads of a message (message.Message on
// the wire): the data of `sent` and `message` decodes as
// wire.MessageData[loadMessage].
type loadMessage struct {
	ID             string          `json:"id"`
	ConversationID string          `json:"conversation_id"`
	Seq            int64           `json:"seq"`
	SenderID       string          `json:"sender_id"`
	ClientMsgID    string          `json:"client_msg_id"`
	Content        json.RawMessage `json:"content"`
}

type msgData = wire.MessageData[loadMessage]

// second is one second of a run's timeline.
type second struct {
	Acked         int64 `json:"acked"`
	Delivered     int64 `json:"delivered"`
	MaxDeliveryUS int64 `json:"max_delivery_us"`
	MaxSentUS     int64 `json:"max_sent_us"`
}

// timelineAt returns the entry of at, growing tl; nil before start or
// past an hour (a bound on what a report carries).
func timelineAt(tl *[]second, start, at time.Time) *second {
	if start.IsZero() || at.Before(start) {
		return nil
	}
	i := int(at.Sub(start) / time.Second)
	if i >= 3600 {
		return nil
	}
	for len(*tl) <= i {
		*tl = append(*tl, second{})
	}
	return &(*tl)[i]
}

func (s *second) sent(lat time.Duration) {
	if s != nil {
		s.Acked++
		s.MaxSentUS = max(s.MaxSentUS, lat.Microseconds())
	}
}

func (s *second) delivered(lat time.Duration) {
	if s != nil {
		s.Delivered++
		s.MaxDeliveryUS = max(s.MaxDeliveryUS, lat.Microseconds())
	}
}
