// Package audit writes minimized, tamper-evident audit records: one Event per
// request, chained with HMAC-SHA256 and closed with Ed25519-signed
// checkpoints, to stdout, rotated files or an HTTP webhook.
//
// # Minimized
//
// An Event holds what an auditor and a FinOps team need (who, which model,
// outcome, tokens, cost, latencies, guardrail findings) and never prompt or
// completion text, credential headers or keys. Content is off by default;
// ContentPolicy can add keyed HMACs of it (hash) or an age ciphertext to a
// recipient whose identity the gateway never holds (sealed). Client addresses
// are truncated with TruncateAddr before they reach the event.
//
// # Never blocking
//
// Emitter.Emit copies the event onto a queue bounded by count and by bytes
// (sealed content makes one event tens of MiB) and returns; a single writer
// goroutine chains and batches records to the sinks. A full queue drops the
// event and counts it, and the chain records the drop as a "dropped" marker.
// Healthy lets the caller refuse requests while the trail is unwritable (fail
// closed): a failed sink, or a queue that overflowed and has not drained to
// half. SinkStats counts, per sink, what was delivered, failed, dropped and
// retried.
//
// # Chain
//
// Every record is one JSON line ending in the members seq, prev and mac:
//
//	{"v":1,...,"seq":N,"prev":"<64 hex>","mac":"<64 hex>"}
//
// seq counts records from 1 per emitter lifetime (a chain segment); prev is
// the mac of the previous record, or a random 32-byte chain id for seq 1.
// When a sink appends to an existing trail (FileSink.ChainAnchor), seq 1 is a
// "start" record naming the seq and mac of the trail's last record and the
// hash of the checkpoint after it, so deleting a whole lifetime between two
// others breaks a link. mac
// is HMAC-SHA256(chain key, B) in lowercase hex, where B is the exact bytes of
// the record serialized without the mac member, ending in
// `"seq":N,"prev":"..."}`. The written line is B without its final "}",
// followed by `,"mac":"<hex>"}` and "\n". A verifier recovers B from the line
// by cutting that fixed-length suffix and appending "}": nothing is ever
// re-marshalled, so key order, escaping and number formats cannot make a valid
// record fail or an edited one pass.
//
// # Checkpoints
//
// File sinks end every file, on rotation and at Close, with a checkpoint:
//
//	{"v":1,"type":"checkpoint","seq":N,"last_mac":"<hex>","count":C,"first_seq":F,"chain_file":K,"reason":"rotate","time":"...","sig":"<128 hex>"}
//
// seq and last_mac are those of the last record before it; count is the number
// of records in the file since its start or its previous checkpoint, and
// first_seq the seq of the first of them. chain_file is the file's position
// in its chain (1, 2, ... across rotations) and reason says why it was
// written: "rotate" (the chain goes on in the next file) or "close". sig is
// Ed25519 over "tollgate audit checkpoint v1\n" followed by the checkpoint's
// bytes without the sig member (built like B above). The first record of the
// next file has prev equal to last_mac, so a rotated set is one chain.
//
// A FileSink writes each record whole: after a short write (a full disk) it
// cuts the file back to the last whole record, and when writing resumes it
// writes a signed "gap" record naming the sequence numbers it lost.
//
// Verify walks a set of files in chain order and reports every edited,
// deleted, reordered or duplicated record, broken link, file that ends
// without a checkpoint, whole files missing at either end of the set (a set
// that does not start at the start of its trail, unless retention is
// allowed; a rotation checkpoint that no later file follows), and bad
// signature, going on after each. Drops, gaps, a chain left unclosed by a
// crash (when the next chain links to it) and an unsealed tail (a file still
// being written) are notes, not failures.
package audit
