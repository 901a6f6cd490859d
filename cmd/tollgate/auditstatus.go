package main

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

// auditLossLogEvery is the most often one kind of audit loss (per sink) is
// logged; what happens in between is counted in the next line.
const auditLossLogEvery = 10 * time.Second

// lossLog logs audit loss (failed sink writes, undeliverable webhook batches,
// dropped events) at once, then at most once per interval per kind and sink,
// with how many were suppressed in between, so a dead sink neither goes
// unnoticed nor floods the log. Errors from policy/audit never carry a URL,
// a key or content.
type lossLog struct {
	log   *zap.Logger
	every time.Duration
	now   func() time.Time

	mu          sync.Mutex
	last        map[string]time.Time
	suppressed  map[string]int64
	heldDropped uint64 // dropped events not yet logged
}

func newLossLog(log *zap.Logger, every time.Duration, now func() time.Time) *lossLog {
	return &lossLog{log: log, every: every, now: now, last: map[string]time.Time{}, suppressed: map[string]int64{}}
}

// allow reports whether key may log now, and how many were suppressed since
// it last did. l.mu must be held.
func (l *lossLog) allow(key string) (bool, int64) {
	now := l.now()
	if last, ok := l.last[key]; ok && now.Sub(last) < l.every {
		l.suppressed[key]++
		return false, 0
	}
	n := l.suppressed[key]
	l.last[key], l.suppressed[key] = now, 0
	return true, n
}

// sinkError logs a failed Write or Close of sink i.
func (l *lossLog) sinkError(i int, typ string, err error) {
	l.mu.Lock()
	ok, n := l.allow("write/" + strconv.Itoa(i))
	l.mu.Unlock()
	if ok {
		l.log.Error("audit sink write failing", zap.Int("sink", i), zap.String("sink_type", typ),
			zap.Int64("suppressed", n), zap.Error(err))
	}
}

// webhookError logs a webhook batch given up on.
func (l *lossLog) webhookError(i int, err error) {
	l.mu.Lock()
	ok, n := l.allow("webhook/" + strconv.Itoa(i))
	l.mu.Unlock()
	if ok {
		l.log.Error("audit webhook delivery failing", zap.Int("sink", i), zap.String("sink_type", "webhook"),
			zap.Int64("suppressed", n), zap.Error(err))
	}
}

// dropped logs events the emitter could not queue (the chain marks them too).
func (l *lossLog) dropped(events uint64) {
	l.mu.Lock()
	l.heldDropped += events
	ok, n := l.allow("dropped")
	total := l.heldDropped
	if ok {
		l.heldDropped = 0
	}
	l.mu.Unlock()
	if ok {
		l.log.Warn("audit events dropped", zap.Int64("events", int64(total)), zap.Int64("suppressed", n))
	}
}

// auditCollector exports the emitter's per-sink counters and queue size.
// Labels are the sink's index and type only: never a path or a URL.
type auditCollector struct {
	em                   *audit.Emitter
	records, retries, up *prometheus.Desc
	queueBytes, queueMax *prometheus.Desc
	maxBytes             int64
}

func newAuditCollector(em *audit.Emitter, maxBytes int64) *auditCollector {
	labels := []string{"sink", "type"}
	return &auditCollector{
		em:       em,
		maxBytes: maxBytes,
		records: prometheus.NewDesc("tollgate_audit_sink_records_total",
			"Audit records per sink by result: delivered (stored or accepted), failed (write failed, retries exhausted), dropped (sink queue full).",
			append(labels, "result"), nil),
		retries: prometheus.NewDesc("tollgate_audit_sink_retries_total", "Audit webhook POSTs that were retries.", labels, nil),
		up:      prometheus.NewDesc("tollgate_audit_sink_up", "1 while the audit sink is writing, 0 while it is failing.", labels, nil),
		queueBytes: prometheus.NewDesc("tollgate_audit_queue_bytes",
			"Approximate bytes of audit events held for the sinks.", nil, nil),
		queueMax: prometheus.NewDesc("tollgate_audit_queue_max_bytes", "The bound of tollgate_audit_queue_bytes.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *auditCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.records, c.retries, c.up, c.queueBytes, c.queueMax} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *auditCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.em.SinkStats() {
		i := strconv.Itoa(s.Index)
		for result, n := range map[string]uint64{"delivered": s.Delivered, "failed": s.Failed, "dropped": s.Dropped} {
			ch <- prometheus.MustNewConstMetric(c.records, prometheus.CounterValue, float64(n), i, s.Type, result)
		}
		ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(s.Retries), i, s.Type)
		up := 0.0
		if s.Healthy {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, i, s.Type)
	}
	ch <- prometheus.MustNewConstMetric(c.queueBytes, prometheus.GaugeValue, float64(c.em.Stats().QueuedBytes))
	ch <- prometheus.MustNewConstMetric(c.queueMax, prometheus.GaugeValue, float64(c.maxBytes))
}

// auditReadiness is the audit member of /readyz.
type auditReadiness struct {
	Healthy    bool                 `json:"healthy"`
	FailClosed bool                 `json:"fail_closed"`
	QueueBytes int64                `json:"queue_bytes"`
	Sinks      []auditSinkReadiness `json:"sinks"`
}

type auditSinkReadiness struct {
	Sink      int    `json:"sink"`
	Type      string `json:"type"`
	Healthy   bool   `json:"healthy"`
	Delivered uint64 `json:"delivered"`
	Failed    uint64 `json:"failed"`
	Dropped   uint64 `json:"dropped"`
	Retries   uint64 `json:"retries"`
}

// auditHealth reports the audit trail's health for /readyz.
type auditHealth struct {
	em         *audit.Emitter
	failClosed bool
}

// readyz returns whether the gateway is ready as far as audit goes (not when
// the trail is unwritable and fail_closed refuses requests) and the JSON
// member `,"audit":{...}` to add to the /readyz body. A nil auditHealth (audit
// off) is ready and adds nothing.
func (h *auditHealth) readyz() (bool, *auditReadiness) {
	if h == nil || h.em == nil {
		return true, nil
	}
	r := auditReadiness{Healthy: h.em.Healthy(), FailClosed: h.failClosed, QueueBytes: h.em.Stats().QueuedBytes,
		Sinks: []auditSinkReadiness{}}
	for _, s := range h.em.SinkStats() {
		r.Sinks = append(r.Sinks, auditSinkReadiness{Sink: s.Index, Type: s.Type, Healthy: s.Healthy,
			Delivered: s.Delivered, Failed: s.Failed, Dropped: s.Dropped, Retries: s.Retries})
	}
	return r.Healthy || !h.failClosed, &r
}
