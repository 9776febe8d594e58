package message

// PendingGrace is how long past its expiry a pending claim is kept.
const PendingGrace = pendingGrace

// SetSweepBatch makes Sweep handle at most n records per Pebble batch, so
// a test covers several batches with a few records.
func (s *PebbleDedupStore) SetSweepBatch(n int) { s.sweepBatch = n }

// Waiting is how many entries of conversation conv's stripe wait for a
// produce of svc.
func Waiting(svc *Messages, conv string) int {
	q := svc.commitQueue(conv)
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting)
}
