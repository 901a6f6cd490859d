package budget

import "errors"

// Sentinel errors besides ErrUnavailable (declared with the Ledger contract in ledger.go).
// Match them with errors.Is. No error from this package carries a secret: at most a counter
// key, a reservation id, a file path or an offending number.
var (
	// ErrInvalidAmount reports text that is not a non-negative decimal USD amount with at
	// most six decimals (ParseUSD).
	ErrInvalidAmount = errors.New("invalid usd amount")

	// ErrInvalidArgument reports a ledger call that breaks the contract: an empty
	// reservation id or key, a negative amount, a non-positive hold, actuals that do not
	// match the items, or a Reserve for an id that was already settled. Nothing changed.
	ErrInvalidArgument = errors.New("invalid ledger argument")

	// ErrClosed reports a call on a ledger after Close. It is always wrapped together with
	// ErrUnavailable, so callers that only check ErrUnavailable fail closed.
	ErrClosed = errors.New("budget ledger closed")

	// ErrCorruptSnapshot reports a snapshot file that cannot be trusted: unreadable JSON, a
	// checksum mismatch or inconsistent contents. OpenEmbedded refuses to start rather than
	// start empty, which would forget what was spent.
	ErrCorruptSnapshot = errors.New("corrupt ledger snapshot")

	// ErrSnapshotVersion reports a snapshot written by an unknown format version.
	ErrSnapshotVersion = errors.New("unsupported ledger snapshot version")

	// ErrLedgerInUse reports an embedded ledger file that another process (or another
	// OpenEmbedded in this one) holds: two writers would each forget the other's spend.
	ErrLedgerInUse = errors.New("ledger file in use by another process")
)
