// Package keys implements Tollgate's virtual keys: the tokens clients present
// in place of a provider key, their storage as peppered digests, and their
// extraction from request headers.
//
// # Token format
//
// A token is 66 ASCII characters:
//
//	tgk_ <id: 12> _ <secret: 43> <checksum: 6>
//	tgk_0123456789ab_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq1ymyFo
//
// The parts are:
//
//   - "tgk_" is a fixed prefix (Prefix), so secret scanners and humans can tell
//     what leaked.
//   - The id is 12 random base62 characters. It is public: it selects the
//     stored record and is what logs, metrics and errors show.
//   - The secret is 43 random base62 characters from crypto/rand (43·log2(62)
//     ≈ 256.03 bits). Each character is drawn uniformly by rejection sampling.
//   - The checksum is the CRC-32 (IEEE) of everything before it, written in
//     base62 and left-padded with '0' to 6 characters. It is not a security
//     feature: it lets Parse refuse typos and truncated keys without a lookup,
//     and lets scanners confirm a match (see TokenPattern).
//
// The base62 alphabet is 0-9, A-Z, a-z, in that order (digit value 0 is '0',
// 10 is 'A', 36 is 'a').
//
// # Storage
//
// Only HMAC-SHA256(pepper, secret) is stored (Digest); the pepper is a server
// secret of at least MinPepperLen bytes kept outside the key store. A fast
// keyed hash is enough because the secret has 256 bits of entropy, so there is
// nothing for a slow password hash to protect; the pepper means a leaked key
// store alone does not allow offline guessing either. Store.Verify compares
// digests in constant time and does the same work for unknown ids.
package keys
