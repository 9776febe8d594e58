package auth

// SessionGrace is how long after its refresh expiry a session is kept.
const SessionGrace = sessionGrace

// SetSweepBatch makes Sweep delete at most n sessions per Pebble batch, so
// a test covers several batches with a few sessions.
func (s *PebbleStore) SetSweepBatch(n int) { s.sweepBatch = n }
