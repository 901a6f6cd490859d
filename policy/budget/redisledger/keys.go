package redisledger

import "strings"

// Key layout. Every counter named by an Item.Key (after the optional key prefix) is two Redis
// keys, and every reservation id has one marker:
//
//	<prefix><Item.Key>                 HASH  u      settled usage
//	                                         r      sum of the live holds' amounts
//	                                         h:<id> amount held for reservation <id>
//	<prefix><Item.Key>:x               ZSET  <id> scored by its hold deadline (unix ms, server clock)
//	<prefix><first key up to its hash tag>:settled:<id>
//	                                   STRING "1", TTL SettledTTL: reservation <id> was settled
//
// The marker takes its hash tag from the first item's key, so every key of one call lies in
// the one Redis Cluster slot that the callers' "{t:<team>}" tag picks.
const (
	holdSetSuffix = ":x"
	settledInfix  = ":settled:"
)

// hashTag returns the end (exclusive) of key's Redis Cluster hash tag, i.e. the index just
// past the first "}" that follows the first "{", when the braces enclose at least one byte;
// otherwise ok is false and Redis hashes the whole key. These are Redis's own rules
// (CLUSTER KEYSLOT).
func hashTag(key string) (end int, ok bool) {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return 0, false
	}
	closing := strings.IndexByte(key[open+1:], '}')
	if closing <= 0 { // none, or "{}" (an empty tag does not count)
		return 0, false
	}
	return open + 1 + closing + 1, true
}

// tagOf returns key's hash tag including its braces ("{t:team}"), or "" when it has none.
func tagOf(key string) string {
	end, ok := hashTag(key)
	if !ok {
		return ""
	}
	return key[strings.IndexByte(key, '{'):end]
}

// settledKey names the marker of reservation id, in the slot of counter key first (already
// prefixed): the part of first up to and including its hash tag, so "tg:{t:a}:k:1:usd" gives
// "tg:{t:a}:settled:<id>". A key without a tag is wrapped whole in braces instead, which
// keeps the slot as long as the key holds no brace (a tagless key with braces cannot share
// a slot with anything; such keys only work on a single node).
func settledKey(first, id string) string {
	if end, ok := hashTag(first); ok {
		return first[:end] + settledInfix + id
	}
	return "{" + first + "}" + settledInfix + id
}
