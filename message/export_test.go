package message

// PendingGrace is how long past its expiry a pending claim is kept.
const PendingGrace = pendingGrace

// SetSweepBatch makes Sweep handle at most n records per Pebble batch, so
// a test covers several batches with a few records.
func (s *PebbleDedupStore) SetSweepBatch(n int) { s.sweepBatch = n }
