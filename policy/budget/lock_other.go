//go:build !unix

package budget

// lockFile is a no-op where flock is not available: one process per ledger file is then the
// operator's responsibility (see the README).
func lockFile(string) (func(), error) { return func() {}, nil }
