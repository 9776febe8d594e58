package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// report is the outcome of one run, printed as a summary and as JSON.
type report struct {
	Tool    string        `json:"tool"`
	RunID   string        `json:"run_id"`
	Started time.Time     `json:"started"`
	Machine machine       `json:"machine"`
	Options options       `json:"options"`
	Setup   setupStats    `json:"setup"`
	Connect connectReport `json:"connect"`
	Server  *serverReport `json:"server,omitempty"`
	// Closed counts sockets the server closed during the run, by close code.
	Closed           map[string]int `json:"closed_by_server,omitempty"`
	OpenAtEnd        int            `json:"open_at_end"`
	Messages         *messageReport `json:"messages,omitempty"`
	FanOut           *fanOutReport  `json:"fan_out,omitempty"`
	ClientCPUSeconds float64        `json:"client_cpu_seconds"`
	Verdict          []string       `json:"verdict"`
}

type connectReport struct {
	Requested   int            `json:"requested"`
	Connected   int            `json:"connected"`
	Failed      int            `json:"failed"`
	Errors      map[string]int `json:"errors,omitempty"`
	ErrorSample string         `json:"error_sample,omitempty"`
	// WallSeconds is from starting the workers to the last one ready.
	WallSeconds float64 `json:"wall_seconds"`
	PerSecond   float64 `json:"per_second"`
	DialLatency latency `json:"dial_latency"`
}

type serverReport struct {
	PID       int           `json:"pid,omitempty"`
	Before    serverSample  `json:"before"`
	After     serverSample  `json:"after"`
	AfterHold *serverSample `json:"after_hold,omitempty"`
	// Growth between Before and After, per open socket.
	RSSGrowthKB         int64   `json:"rss_growth_kb,omitempty"`
	RSSPerSocketKB      float64 `json:"rss_per_socket_kb,omitempty"`
	HeapPerSocketBytes  float64 `json:"heap_inuse_per_socket_bytes,omitempty"`
	StackPerSocketBytes float64 `json:"stack_inuse_per_socket_bytes,omitempty"`
	GoroutinesPerSocket float64 `json:"goroutines_per_socket,omitempty"`
	CPUPercent          float64 `json:"cpu_percent,omitempty"`
}

type messageReport struct {
	TargetRate      float64        `json:"target_rate"`
	Sent            int64          `json:"sent"`
	Acked           int64          `json:"acked"`
	Received        int64          `json:"received"`
	RunSeconds      float64        `json:"run_seconds"`
	AckedPerSecond  float64        `json:"acked_per_second"`
	DeliveredPerSec float64        `json:"delivered_per_second"`
	SendErrors      map[string]int `json:"send_errors,omitempty"`
	SentLatency     latency        `json:"send_to_sent"`
	DeliveryLatency latency        `json:"send_to_delivery"`
	Duplicates      int64          `json:"duplicates"`
	OutOfOrder      int64          `json:"out_of_order"`
	Missing         int64          `json:"missing"`
	Unexpected      int64          `json:"unexpected"`
	SeqGaps         int64          `json:"seq_gaps"`
	MaxLagMS        float64        `json:"max_schedule_lag_ms"`
	DrainSeconds    float64        `json:"drain_seconds"`
	DrainTimedOut   bool           `json:"drain_timed_out"`
	ExactlyOnce     bool           `json:"exactly_once_in_order"`
	Timeline        []second       `json:"timeline,omitempty"`
	// Resync is what reconnecting and syncing did (--resync); Missing is
	// then the lost: acknowledged, absent after the final sync.
	Resync *resyncReport `json:"resync,omitempty"`

	sent, deliv *hist
}

// resyncReport is the merged resyncStats with the recovered latency summed up.
type resyncReport struct {
	resyncStats
	RecoveredLatencySummary latency `json:"sync_recovered_latency_summary"`
}

type fanOutReport struct {
	Members  int `json:"members"`
	Messages int `json:"messages"`
	// Complete counts messages every member got; CompleteLatency is, per
	// message, the time until its last member had it.
	Complete        int     `json:"complete"`
	Incomplete      int     `json:"incomplete"`
	CompleteLatency latency `json:"all_members_latency"`
}

func (r *report) mergeConnect(results map[int]*workerResult, wall time.Duration) {
	c := &r.Connect
	c.Errors = map[string]int{}
	dial := newHist()
	for _, res := range results {
		if res == nil {
			continue
		}
		c.Connected += res.Connected
		c.Failed += res.DialFailed
		for k, v := range res.DialErrors {
			c.Errors[k] += v
		}
		if c.ErrorSample == "" {
			c.ErrorSample = res.DialSample
		}
		dial.merge(res.DialLatency)
	}
	switch r.Options.Scenario {
	case "sockets":
		c.Requested = r.Options.Sockets
	case "chat":
		c.Requested = 2 * r.Options.Pairs
	case "group":
		c.Requested = r.Options.Members + 1
	}
	c.WallSeconds = wall.Seconds()
	if c.WallSeconds > 0 {
		c.PerSecond = float64(c.Connected) / c.WallSeconds
	}
	c.DialLatency = dial.summary()
}

func (r *report) mergeResults(results map[int]event) {
	r.Closed = map[string]int{}
	m := &messageReport{SendErrors: map[string]int{}, sent: newHist(), deliv: newHist()}
	for _, e := range results {
		res := e.Result
		if res == nil {
			continue
		}
		r.OpenAtEnd += res.OpenAtEnd
		for k, v := range res.Closed {
			r.Closed[k] += v
		}
		m.Sent += res.Sent
		m.Acked += res.Acked
		m.Received += res.Received
		for k, v := range res.SendErrors {
			m.SendErrors[k] += v
		}
		m.sent.merge(res.SentLatency)
		m.deliv.merge(res.DeliveryLatency)
		m.Duplicates += res.Duplicates
		m.OutOfOrder += res.OutOfOrder
		m.Missing += res.Missing
		m.Unexpected += res.Unexpected
		m.SeqGaps += res.SeqGaps
		m.MaxLagMS = max(m.MaxLagMS, res.MaxLagMS)
		m.RunSeconds = max(m.RunSeconds, res.RunSeconds)
		m.DrainSeconds = max(m.DrainSeconds, res.DrainSeconds)
		m.DrainTimedOut = m.DrainTimedOut || res.DrainTimedOut
		if res.Resync != nil {
			if m.Resync == nil {
				m.Resync = &resyncReport{resyncStats: *newResyncStats()}
			}
			m.Resync.merge(res.Resync)
		}
		for i, sec := range res.Timeline {
			for len(m.Timeline) <= i {
				m.Timeline = append(m.Timeline, second{})
			}
			t := &m.Timeline[i]
			t.Acked += sec.Acked
			t.Delivered += sec.Delivered
			t.MaxDeliveryUS = max(t.MaxDeliveryUS, sec.MaxDeliveryUS)
			t.MaxSentUS = max(t.MaxSentUS, sec.MaxSentUS)
		}
	}
	if r.Options.Scenario != "sockets" {
		r.Messages = m
	}
}

func (r *report) finishSockets(o options) {
	s := r.Server
	n := float64(r.Connect.Connected)
	if n > 0 && s.Before.RSSKB > 0 && s.After.RSSKB > 0 {
		s.RSSGrowthKB = s.After.RSSKB - s.Before.RSSKB
		s.RSSPerSocketKB = float64(s.RSSGrowthKB) / n
	}
	if n > 0 && s.After.HeapInuse > 0 {
		s.HeapPerSocketBytes = float64(s.After.HeapInuse-s.Before.HeapInuse) / n
		s.GoroutinesPerSocket = float64(s.After.Goroutines-s.Before.Goroutines) / n
		s.StackPerSocketBytes = float64(s.After.StackInuse-s.Before.StackInuse) / n
	}
	r.Verdict = append(r.Verdict, fmt.Sprintf("connected %d of %d sockets", r.Connect.Connected, r.Connect.Requested))
	if s.RSSPerSocketKB > 0 {
		ok := "meets"
		if s.RSSPerSocketKB > o.KBTarget {
			ok = "MISSES"
		}
		r.Verdict = append(r.Verdict, fmt.Sprintf("server RSS %.2f KB/socket %s the %.0f KB target", s.RSSPerSocketKB, ok, o.KBTarget))
	}
	if dropped := sumMap(r.Closed); dropped > 0 {
		r.Verdict = append(r.Verdict, fmt.Sprintf("%d sockets closed by the server while held: %v", dropped, r.Closed))
	}
}

func (r *report) finishMessages(o options) {
	m := r.Messages
	if m == nil {
		return
	}
	m.TargetRate = o.Rate
	m.SentLatency, m.DeliveryLatency = m.sent.summary(), m.deliv.summary()
	if m.Resync != nil {
		m.Resync.RecoveredLatencySummary = m.Resync.RecoveredLatency.summary()
	}
	if m.RunSeconds > 0 {
		m.AckedPerSecond = float64(m.Acked) / m.RunSeconds
		m.DeliveredPerSec = float64(m.Received) / m.RunSeconds
	}
	m.ExactlyOnce = m.Missing == 0 && m.Duplicates == 0 && m.OutOfOrder == 0 && m.Unexpected == 0 && m.SeqGaps == 0 && !m.DrainTimedOut
	s := r.Server
	if s.After.CPUSeconds > 0 && m.RunSeconds > 0 {
		span := s.After.At.Sub(s.Before.At).Seconds()
		s.CPUPercent = 100 * (s.After.CPUSeconds - s.Before.CPUSeconds) / span
	}
	errs := sumMap(m.SendErrors)
	r.Verdict = append(r.Verdict, fmt.Sprintf("%.0f msgs/s acknowledged of %.0f targeted; %d send errors", m.AckedPerSecond, o.Rate, errs))
	p99 := time.Duration(m.DeliveryLatency.P99MS * float64(time.Millisecond))
	ok := "meets"
	if p99 > o.P99Target || m.AckedPerSecond < 0.95*o.Rate || errs > 0 || m.Missing > 0 || m.Received == 0 {
		ok = "MISSES"
	}
	r.Verdict = append(r.Verdict, fmt.Sprintf("delivery p99 %.1f ms at %.0f msgs/s %s the %s target", m.DeliveryLatency.P99MS, m.AckedPerSecond, ok, o.P99Target))
	if rs := m.Resync; rs != nil {
		r.Verdict = append(r.Verdict, fmt.Sprintf("resync: %d reconnects, %.1f s disconnected in total, %d messages recovered by sync, %d sends retried, final sync on %d of %d devices",
			rs.Reconnects, rs.DisconnectedSeconds, rs.Recovered, rs.Retried, rs.FinalSyncs, rs.Devices))
		if rs.FinalSyncs < rs.Devices {
			m.ExactlyOnce = false
		}
	}
	switch {
	case m.ExactlyOnce && m.Resync != nil:
		r.Verdict = append(r.Verdict, "every acknowledged message was on its recipient after the final sync, exactly once, in seq order: lost 0, duplicates 0")
	case m.ExactlyOnce:
		r.Verdict = append(r.Verdict, "every acknowledged message arrived exactly once, in seq order")
	case m.Resync != nil:
		r.Verdict = append(r.Verdict, fmt.Sprintf("DELIVERY CHECK FAILED: lost %d (acknowledged, absent after the final sync), duplicates %d, out of order %d, unexpected %d, seq gaps %d, drain timed out %v, final syncs %d of %d",
			m.Missing, m.Duplicates, m.OutOfOrder, m.Unexpected, m.SeqGaps, m.DrainTimedOut, m.Resync.FinalSyncs, m.Resync.Devices))
	default:
		r.Verdict = append(r.Verdict, fmt.Sprintf("DELIVERY CHECK FAILED: missing %d, duplicates %d, out of order %d, unexpected %d, seq gaps %d, drain timed out %v",
			m.Missing, m.Duplicates, m.OutOfOrder, m.Unexpected, m.SeqGaps, m.DrainTimedOut))
	}
	if dropped := sumMap(r.Closed); dropped > 0 {
		r.Verdict = append(r.Verdict, fmt.Sprintf("%d sockets closed by the server during the run: %v", dropped, r.Closed))
	}
}

func (r *report) finishFanOut(o options, expect []int64, results map[int]event) {
	fo := &fanOutReport{Members: o.Members, Messages: len(expect)}
	all := newHist()
	for _, k := range expect {
		var reached, slowest int64
		for _, e := range results {
			if e.Result == nil {
				continue
			}
			v := e.Result.FanOut[k]
			reached += v[0]
			slowest = max(slowest, v[1])
		}
		if reached >= int64(o.Members) {
			fo.Complete++
			all.addUS(slowest)
		} else {
			fo.Incomplete++
		}
	}
	fo.CompleteLatency = all.summary()
	r.FanOut = fo
	r.Verdict = append(r.Verdict, fmt.Sprintf("%d of %d group messages reached all %d members; last member p99 %.1f ms",
		fo.Complete, fo.Messages, o.Members, fo.CompleteLatency.P99MS))
}

func sumMap(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func fmtMap(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

func fmtLat(l latency) string {
	if l.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms (n=%d)", l.P50MS, l.P90MS, l.P99MS, l.MaxMS, l.N)
}

func (r *report) printSummary(w io.Writer) {
	o := r.Options
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("== beehive-load %s  run %s  %s", o.Scenario, r.RunID, r.Started.Format(time.RFC3339))
	p("machine   %s, %d cpus, %d MB, load at start %s, nofile %d/%d, ports %s",
		r.Machine.CPUModel, r.Machine.NumCPU, r.Machine.MemTotalMB, r.Machine.LoadAvg, r.Machine.NoFileSoft, r.Machine.NoFileHard, r.Machine.PortRange)
	p("target    %s, %d worker(s)", o.Addr, o.Workers)
	p("setup     %d users in %.1fs (%.0f/s), errors: %s", r.Setup.Users, r.Setup.Seconds, r.Setup.PerSec, fmtMap(r.Setup.Errors))
	c := r.Connect
	p("connect   %d of %d sockets in %.1fs (%.0f/s), failed %d (%s)", c.Connected, c.Requested, c.WallSeconds, c.PerSecond, c.Failed, fmtMap(c.Errors))
	if c.ErrorSample != "" {
		p("          first dial error: %s", c.ErrorSample)
	}
	p("          handshake %s", fmtLat(c.DialLatency))
	if s := r.Server; s != nil {
		if s.Before.RSSKB > 0 {
			perSocket := ""
			if s.RSSPerSocketKB != 0 {
				perSocket = fmt.Sprintf(", %.2f KB/socket", s.RSSPerSocketKB)
			}
			p("server    RSS %d KB -> %d KB (%+d KB%s); fds %d -> %d; threads %d -> %d",
				s.Before.RSSKB, s.After.RSSKB, s.After.RSSKB-s.Before.RSSKB, perSocket, s.Before.FDs, s.After.FDs, s.Before.Threads, s.After.Threads)
		}
		if s.After.HeapInuse > 0 {
			perSocket := ""
			if s.HeapPerSocketBytes != 0 {
				perSocket = fmt.Sprintf(" (%.0f B/socket)", s.HeapPerSocketBytes)
			}
			if s.StackPerSocketBytes != 0 {
				perSocket += fmt.Sprintf("; stacks %.1f MB -> %.1f MB (%.0f B/socket)",
					float64(s.Before.StackInuse)/(1<<20), float64(s.After.StackInuse)/(1<<20), s.StackPerSocketBytes)
			}
			p("          Go heap in use %.1f MB -> %.1f MB%s; goroutines %d -> %d",
				float64(s.Before.HeapInuse)/(1<<20), float64(s.After.HeapInuse)/(1<<20), perSocket, s.Before.Goroutines, s.After.Goroutines)
		}
		if s.AfterHold != nil {
			p("          after hold: RSS %d KB, heap in use %.1f MB, goroutines %d", s.AfterHold.RSSKB, float64(s.AfterHold.HeapInuse)/(1<<20), s.AfterHold.Goroutines)
		}
		if s.CPUPercent > 0 {
			p("          server CPU %.0f%% of one core over the run", s.CPUPercent)
		}
		if s.After.MetricsErr != "" {
			p("          metrics: %s", s.After.MetricsErr)
		}
	}
	if m := r.Messages; m != nil {
		p("messages  sent %d, acked %d (%.0f/s of %.0f targeted), delivered %d (%.0f/s) in %.1fs; drain %.1fs",
			m.Sent, m.Acked, m.AckedPerSecond, m.TargetRate, m.Received, m.DeliveredPerSec, m.RunSeconds, m.DrainSeconds)
		p("          send errors: %s; max schedule lag %.1f ms", fmtMap(m.SendErrors), m.MaxLagMS)
		p("send->sent      %s", fmtLat(m.SentLatency))
		p("send->delivered %s", fmtLat(m.DeliveryLatency))
		if rs := m.Resync; rs != nil {
			p("resync    reconnects %d (failed attempts: %s), relogins %d; disconnected %.1f s in total, longest outage %.1f s",
				rs.Reconnects, fmtMap(rs.ReconnectErrors), rs.Relogins, rs.DisconnectedSeconds, rs.MaxOutageSeconds)
			p("          syncs %d (errors: %s, stalled %d); recovered by sync %d, sync repeats %d, redelivered live %d",
				rs.Syncs, fmtMap(rs.SyncErrors), rs.SyncStalled, rs.Recovered, rs.SyncRepeats, rs.Redelivered)
			p("          sends retried %d (write failures %d, conflicts %d), acked late %d, unanswered %d; final sync %d of %d devices in %.1fs",
				rs.Retried, rs.WriteFailures, rs.RetryConflicts, rs.AckedLate, rs.Unanswered, rs.FinalSyncs, rs.Devices, rs.FinalSyncSeconds)
			p("          lost %d (acknowledged, absent after the final sync), duplicates %d (twice live on one socket life, or one message under two seqs)",
				m.Missing, m.Duplicates)
			p("          seqs held twice %d; seqs skipped %d (a restart skips the rest of a leased seq block)", m.SeqGaps, rs.SeqSkipped)
			p("recovered       %s", fmtLat(rs.RecoveredLatencySummary))
		}
		if o.Timeline {
			p("timeline  second: acked/s delivered/s max-sent-ms max-delivery-ms")
			for i, t := range m.Timeline {
				p("          %4d: %6d %6d %9.1f %9.1f", i, t.Acked, t.Delivered, float64(t.MaxSentUS)/1000, float64(t.MaxDeliveryUS)/1000)
			}
		}
	}
	if fo := r.FanOut; fo != nil {
		p("fan-out   %d messages to %d members: complete %d, incomplete %d", fo.Messages, fo.Members, fo.Complete, fo.Incomplete)
		p("all members     %s", fmtLat(fo.CompleteLatency))
	}
	p("closed    by server: %s; open at end %d; client CPU %.1fs", fmtMap(r.Closed), r.OpenAtEnd, r.ClientCPUSeconds)
	for _, v := range r.Verdict {
		p("=> %s", v)
	}
}
