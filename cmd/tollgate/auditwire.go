package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tollgate-ai/tollgate/extproc"
	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/audit"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// resolve reads a secret reference relative to the config directory.
func resolve(field, ref, dir string) (secrets.Value, error) {
	r, err := secrets.ParseRef(ref)
	if err != nil {
		return secrets.Value{}, fmt.Errorf("%s: %w", field, err)
	}
	v, err := secrets.Resolver{}.Resolve(r, dir)
	if err != nil {
		return secrets.Value{}, fmt.Errorf("%s: %w", field, err)
	}
	return v, nil
}

// openAudit builds the audit emitter and its sinks. It lives for the whole process; a
// reload does not change sinks or keys. With no sink configured, auditing is off.
func openAudit(c policy.AuditConfig, dir string, stdout io.Writer, log *zap.Logger, reg prometheus.Registerer) (*extproc.AuditConfig, func(context.Context) error, error) {
	if !c.Enabled() {
		log.Warn("audit: no sink configured; audit events are off")
		return nil, func(context.Context) error { return nil }, nil
	}
	chainKey, err := resolve("audit.chain_key", c.ChainKey, dir)
	if err != nil {
		return nil, nil, err
	}
	var cpKey ed25519.PrivateKey
	if c.CheckpointKey != "" {
		v, err := resolve("audit.checkpoint_key", c.CheckpointKey, dir)
		if err != nil {
			return nil, nil, err
		}
		if cpKey, err = audit.ParseCheckpointPrivateKey(v.Bytes()); err != nil {
			return nil, nil, fmt.Errorf("audit.checkpoint_key: %w", err)
		}
	}
	var hashKey []byte
	if c.Content == "hash" {
		v, err := resolve("audit.content_hash_key", c.ContentHashKey, dir)
		if err != nil {
			return nil, nil, err
		}
		hashKey = v.Bytes()
	}
	content, err := audit.NewContentPolicy(audit.ContentMode(c.Content), hashKey, c.ContentRecipient)
	if err != nil {
		return nil, nil, fmt.Errorf("audit.content: %w", err)
	}

	maxBytes := c.QueueMaxBytes
	if maxBytes == 0 {
		maxBytes = audit.DefaultQueueMaxBytes
	}
	alog := log.Named("audit")
	loss := newLossLog(alog, auditLossLogEvery, time.Now)
	var sinks []audit.Sink
	var types []string // per sink, for logs
	closeSinks := func() {
		for _, s := range sinks {
			_ = s.Close()
		}
	}
	if c.Stdout {
		sinks, types = append(sinks, audit.NewWriterSink(stdout, cpKey)), append(types, "writer")
	}
	if c.File != nil {
		path := c.File.Path
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		fs, err := audit.NewFileSink(audit.FileSinkConfig{Path: path, MaxBytes: c.File.MaxBytes,
			Fsync: audit.FsyncMode(c.File.Fsync), CheckpointKey: cpKey})
		if err != nil {
			closeSinks()
			return nil, nil, fmt.Errorf("audit.file: %w", err)
		}
		sinks, types = append(sinks, fs), append(types, "file")
	}
	if c.Webhook != nil {
		i := len(sinks)
		wc := audit.WebhookConfig{URL: c.Webhook.URL, BatchSize: c.Webhook.BatchSize, FlushInterval: c.Webhook.FlushInterval,
			QueueMaxBytes: maxBytes, OnError: func(err error) { loss.webhookError(i, err) }}
		if c.Webhook.Authorization != "" {
			if wc.Authorization, err = resolve("audit.webhook.authorization", c.Webhook.Authorization, dir); err != nil {
				closeSinks()
				return nil, nil, err
			}
		}
		ws, err := audit.NewWebhookSink(wc)
		if err != nil {
			closeSinks()
			return nil, nil, fmt.Errorf("audit.webhook: %w", err)
		}
		sinks, types = append(sinks, ws), append(types, "webhook")
	}
	em, err := audit.NewEmitter(audit.EmitterConfig{
		ChainKey:      chainKey.Bytes(),
		QueueSize:     c.QueueSize,
		QueueMaxBytes: maxBytes,
		OnSinkError:   func(sink int, err error) { loss.sinkError(sink, types[sink], err) },
		OnDrop:        loss.dropped,
	}, sinks...)
	if err != nil {
		closeSinks()
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	for name, f := range map[string]func(audit.Stats) uint64{
		"tollgate_audit_events_emitted_total": func(s audit.Stats) uint64 { return s.Emitted },
		"tollgate_audit_events_dropped_total": func(s audit.Stats) uint64 { return s.Dropped },
		"tollgate_audit_events_written_total": func(s audit.Stats) uint64 { return s.Written },
		"tollgate_audit_sink_errors_total":    func(s audit.Stats) uint64 { return s.SinkErrors },
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: "Audit emitter: " + name + "."},
			func() float64 { return float64(f(em.Stats())) }))
	}
	reg.MustRegister(newAuditCollector(em, maxBytes))
	ac := &extproc.AuditConfig{Auditor: em, Content: content, V4Bits: c.ClientAddrV4Bits, V6Bits: c.ClientAddrV6Bits,
		FailClosed: c.FailClosed}
	return ac, func(ctx context.Context) error {
		err := em.Close(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("audit: drain timed out; undelivered events were dropped: %w", err)
		}
		return err
	}, nil
}

// auditHealthOf returns the /readyz view of the audit trail built by
// openAudit; nil when audit is off.
func auditHealthOf(ac *extproc.AuditConfig) *auditHealth {
	if ac == nil {
		return nil
	}
	em, ok := ac.Auditor.(*audit.Emitter)
	if !ok {
		return nil
	}
	return &auditHealth{em: em, failClosed: ac.FailClosed}
}
