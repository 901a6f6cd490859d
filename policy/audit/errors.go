package audit

import "errors"

// Sentinel errors. Match them with errors.Is. No error from this package ever
// contains prompt or completion text, a key, or an Authorization value: at most
// a file path, a line number, a sequence number or an HTTP status.
var (
	// ErrWeakKey reports a chain or content-hash key shorter than MinKeyLen bytes.
	ErrWeakKey = errors.New("key is too short")

	// ErrBadRecipient reports a sealing recipient that is not an age X25519
	// public key ("age1...").
	ErrBadRecipient = errors.New("not an age X25519 recipient")

	// ErrBadContentMode reports a content mode other than off, hash or sealed.
	ErrBadContentMode = errors.New("unknown content mode")

	// ErrBadCheckpointKey reports an Ed25519 key that cannot be parsed or has the
	// wrong size.
	ErrBadCheckpointKey = errors.New("invalid checkpoint key")

	// ErrClosed reports a write to a sink or emitter that has been closed.
	ErrClosed = errors.New("audit sink is closed")

	// ErrQueueFull reports records dropped because a bounded queue was full.
	ErrQueueFull = errors.New("audit queue is full")

	// ErrNotChained reports a record handed to a sink that is not a chained
	// audit line (it lacks the seq, prev and mac members the Emitter writes).
	ErrNotChained = errors.New("record is not a chained audit line")

	// ErrDelivery reports a webhook batch that could not be delivered.
	ErrDelivery = errors.New("audit webhook delivery failed")

	// ErrBadConfig reports an invalid sink or emitter configuration.
	ErrBadConfig = errors.New("invalid audit configuration")
)

// Verification failures. Verify returns a *Problem wrapping exactly one of
// these; match with errors.Is.
var (
	// ErrModified reports a record whose mac does not match its bytes: a field
	// was edited.
	ErrModified = errors.New("record modified")

	// ErrMissing reports records absent from the chain: a sequence gap, a
	// checkpoint that covers more records than the file holds, a missing
	// chain segment, or whole files missing at the head or the tail of a set.
	ErrMissing = errors.New("records deleted")

	// ErrReordered reports records out of sequence order.
	ErrReordered = errors.New("records reordered")

	// ErrChainBroken reports a record whose prev does not match the mac of the
	// record before it although the sequence numbers line up: a record from
	// another chain, or one replaced wholesale.
	ErrChainBroken = errors.New("chain link broken")

	// ErrTruncated reports records not followed by a checkpoint (a truncated
	// tail, a crash, or a file still being written), or an incomplete last line.
	ErrTruncated = errors.New("truncated: records not covered by a checkpoint")

	// ErrCheckpointMismatch reports a checkpoint whose seq, last_mac or count
	// disagree with the records before it.
	ErrCheckpointMismatch = errors.New("checkpoint does not match the records")

	// ErrBadSignature reports a checkpoint whose Ed25519 signature does not verify.
	ErrBadSignature = errors.New("bad checkpoint signature")

	// ErrDuplicate reports a chain segment that appears twice in the set.
	ErrDuplicate = errors.New("duplicate chain segment")

	// ErrMalformed reports a line that is not a record this package writes.
	ErrMalformed = errors.New("malformed record")

	// ErrNoRecords reports a file set with no records at all.
	ErrNoRecords = errors.New("no audit records")
)

// errLineTooLong stops reading a file at a line longer than MaxLineBytes;
// Verify reports it as ErrMalformed with the line's position.
var errLineTooLong = errors.New("line too long")
