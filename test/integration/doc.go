// Package integration holds tests against real backing services started by the tests
// themselves (test/testutil): the Redis budget ledger against redis-server, single node and
// one-node Redis Cluster. They run in `go test ./...`; without redis-server they skip, or
// fail when CI=true.
package integration
