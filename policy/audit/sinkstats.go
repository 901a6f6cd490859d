package audit

// SinkStats are one sink's counters and health, for metrics and readiness.
// The counts only grow. They never name a path or a URL.
type SinkStats struct {
	// Index is the sink's position in NewEmitter's arguments.
	Index int
	// Type is "file", "webhook", "writer" (standard output) or "custom".
	Type string
	// Healthy is false while the sink cannot write: its last write failed, its
	// queue is over its bound, or it is closed.
	Healthy bool
	// Delivered counts records the sink stored (file, writer) or the receiver
	// accepted (webhook).
	Delivered uint64
	// Failed counts records given up on: a failed write (a full disk), or a
	// webhook batch whose retries ran out or that the receiver refused.
	Failed uint64
	// Dropped counts records refused because the sink's queue was full or the
	// sink was closed (webhook).
	Dropped uint64
	// Retries counts webhook POSTs that were retries.
	Retries uint64
}

// sinkStatser is a sink that counts its own deliveries. The Emitter counts
// for sinks that do not.
type sinkStatser interface {
	SinkStats() SinkStats
}

// SinkStats returns each sink's counters, in NewEmitter's order. A sink that
// does not count itself is reported as "custom", with the records of the
// Writes that succeeded as delivered and of those that failed as failed.
func (e *Emitter) SinkStats() []SinkStats {
	out := make([]SinkStats, len(e.sinks))
	for i, s := range e.sinks {
		var st SinkStats
		if ss, ok := s.(sinkStatser); ok {
			st = ss.SinkStats()
		} else {
			st = SinkStats{Type: "custom", Healthy: true, Delivered: e.delivered[i].Load(), Failed: e.failed[i].Load()}
			if h, ok := s.(interface{ Healthy() bool }); ok {
				st.Healthy = h.Healthy()
			}
		}
		st.Index = i
		st.Healthy = st.Healthy && !e.failing[i].Load()
		out[i] = st
	}
	return out
}
