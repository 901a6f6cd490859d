package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/budget/redisledger"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// openLedger opens the configured budget ledger. It lives for the whole process: a reload
// that changes budget.ledger or its connection settings takes effect after a restart.
// closeFn flushes and closes it.
func openLedger(ctx context.Context, b policy.BudgetConfig, dir string) (l budget.Ledger, closeFn func() error, err error) {
	switch b.Ledger {
	case policy.LedgerRedis:
		opts := &redis.UniversalOptions{
			Addrs: b.Redis.Addrs, DB: b.Redis.DB,
			DialTimeout: b.Redis.Timeout, ReadTimeout: b.Redis.Timeout, WriteTimeout: b.Redis.Timeout,
			MaxRetries: -1, // one round trip per call: a retry could double a reservation's latency budget
		}
		if b.Redis.Password != "" {
			ref, err := secrets.ParseRef(b.Redis.Password)
			if err != nil {
				return nil, nil, fmt.Errorf("budget.redis.password: %w", err)
			}
			v, err := secrets.Resolver{}.Resolve(ref, dir)
			if err != nil {
				return nil, nil, fmt.Errorf("budget.redis.password: %w", err)
			}
			opts.Password = v.Reveal()
		}
		client := redis.NewUniversalClient(opts)
		return redisledger.New(client, redisledger.WithTimeout(b.Redis.Timeout)), client.Close, nil
	default:
		path := b.Embedded.Path
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		e, err := budget.OpenEmbedded(path, budget.WithFlushInterval(b.Embedded.FlushInterval))
		if err != nil {
			return nil, nil, fmt.Errorf("budget.embedded: %w", err)
		}
		go e.Run(ctx)
		return e, e.Close, nil
	}
}
