package redisledger

import "errors"

// Sentinel errors of this package, matched with errors.Is. Call errors are budget's own
// (budget.ErrUnavailable, budget.ErrInvalidArgument); these report a bad configuration.
var (
	// ErrInvalidKeyPrefix reports a WithKeyPrefix holding "{" or "}": it would change the
	// keys' hash tags and spread one reservation's keys over several cluster slots.
	ErrInvalidKeyPrefix = errors.New("key prefix must not contain { or }")
)
