// Package guard is Tollgate's guardrail engine: it finds PII, secrets and
// prompt-injection phrases in the text a provider will read (and in what it
// answers) and blocks, redacts or records them. It has no Envoy or gRPC
// imports and never logs; wiring it into the request path is the caller's
// job.
//
// # Profiles, rules and actions
//
// Compile turns ProfileConfigs into an immutable Engine. A profile is a list
// of rules; a rule binds one detector to an Action: Block (the caller
// answers 403 naming Result.BlockedBy), Redact (the caller forwards
// Result.NewBody, in which each match is replaced by a typed placeholder such
// as [EMAIL_1]) or Audit (findings only). Placeholders are numbered per label
// in order of appearance, and a value that repeats, in any spelling that
// normalizes alike, gets the same number. A profile in dry-run mode reports
// Result.Intended and its findings but always decides DecisionAllow.
//
// A body that parses but cannot be scanned (over the profile's MaxScanBytes,
// or a response that is not readable JSON) is a scan failure: each rule's
// fail mode decides, and the default is closed (the first fail-closed rule
// blocks). A request body that is not one JSON object, nests deeper than
// MaxDepth or repeats a key in any object is an error for every profile,
// because Tollgate and the provider must never read different values.
//
// Findings carry rule ids, detectors, counts and paths built from names
// Tollgate defines ("messages[2].content"; "(body)" for a top-level member
// the schema does not name), never matched text; errors carry at most a
// byte offset, a schema path or a config field path. Result.Totals is the
// shape an audit event records.
//
// ContainsVirtualKey is the cheap, profile-independent check that a body
// holds no Tollgate key in any spelling.
//
// # Where the engine looks
//
// ScanRequest parses the body once, in a single strict pass (RFC 8259, no
// tree, no allocation on the clean path) that also records the byte span of
// every string to scan. In a request that is every string the provider
// reads, in members the endpoint's schema names and in members it does not
// (user, metadata, stop, a stray content in a text part, fields a provider
// adds tomorrow), object keys included. Three kinds of strings differ:
//
//   - Base64 data is skipped: image, file and audio data URLs
//     (image_url, url, file_data: "data:…;base64,…"; the header up to the
//     comma is still scanned), input_audio data, and Anthropic source data
//     and redacted_thinking data when the block's type is "base64" or
//     "redacted_thinking". Only a value that really is base64 is skipped;
//     anything else there (a "text" document's data, an https URL) is text.
//   - Strings that must stay as they are keep their bytes: tool and
//     function names, ids (id, *_id), type, role, model, status, thinking
//     signatures, encrypted_content and object keys the schema does not
//     name (metadata keys, JSON schema property names). They are scanned,
//     and a match of a block or redact rule there blocks the request: it
//     cannot be redacted without breaking the request.
//   - Every other string is text: matches are redacted in place.
//
// A text-bearing member of a kind the schema does not know is refused with
// ErrUnknownShape for every profile: messages[].content, Anthropic system,
// Responses and embeddings input, a text part's text, user or metadata as
// an object, a number or another unexpected kind.
//
// ScanResponseJSON reads the members of the dialect tables (dialects.go),
// which the stream redactor reads too: chat message content, refusal,
// reasoning_content, reasoning and function or tool-call arguments;
// completions text; Responses output items' message text and refusals,
// function, custom tool and MCP arguments, reasoning summaries and
// reasoning text, code interpreter code; Anthropic text, thinking, tool_use
// input, citations and tool result content. A member of an unexpected kind
// in a response is read whole (every string in it). A profile that
// rewrites responses also removes their logprobs, which repeat the text
// token by token: null for chat and completions choices, [] for Responses
// content parts.
//
// # Normalization
//
// Detectors match a normalized copy of each decoded string (see normalizer):
// a second layer of \uXXXX escapes is decoded (tool-call arguments are JSON
// inside JSON), invisible characters are dropped (zero-width spaces and
// joiners, U+2060, U+FEFF, soft hyphens, bidi controls, variation selectors,
// tag characters), the text is put in Unicode NFKC (full-width digits and
// letters, ligatures, exotic spaces), and then folded: every Unicode decimal
// digit (Arabic-Indic, Persian, Devanagari, Bengali, Thai, ...) becomes its
// ASCII digit, and letters of other scripts drawn like Latin ones (a subset
// of the Unicode TR39 confusables: Cyrillic, Greek, Lisu, Armenian, and
// Latin variants such as dotless i) become that Latin letter, so "АKIA…"
// with a Cyrillic А is an AWS key. A letter with a combining mark is not
// folded. Ordinary Cyrillic or Greek prose folds to mixed-script words that
// no detector matches. An offset map leads each match back to the original
// characters, which is what redaction replaces, so the evasive spelling
// leaves the body too. Custom literals are folded like the text, and so are
// custom expressions' literals and their classes of non-ASCII letters or
// digits; look-alikes from other scripts (Cherokee, for one) are not folded.
//
// Secrets may also hide in base64: a run of base64 (standard or URL-safe,
// padded or not, wrapped over lines) that contains a word of 20 or more
// characters is decoded whole (and, when that finds nothing, again from
// after a '/', '-', '_' or '+' near its start, in case text such as a URL
// path is glued to it), and the plaintext is scanned for secrets; a secret
// there makes the run a match of its detector. Runs of 16 bytes to 64 KiB are decoded, base64 inside base64
// is not, and in a stream a run longer than the hold bound (4 KiB or more)
// is not reliably decoded. See base64.go.
//
// # Detectors
//
//   - pii.email: local@domain.tld, two or more domain labels, alphabetic TLD.
//   - pii.phone: E.164 ("+" and 9 to 15 digits, separators and "(0)"
//     allowed; +1 numbers must be valid NANP) and NANP shapes
//     (415-555-2671, 415.555.2671, 415 555 2671, (415) 555-2671, with an
//     optional leading 1) with area and exchange codes starting 2-9. Bare
//     digit runs, dates, times and UUID segments are not phones.
//   - pii.card: 13 to 19 digits, unbroken or printed in 4-4-4-4(-n), 4-6-5
//     or 4-6-4 groups with one kind of separator (spaces, dashes or dots,
//     not mixed), a plausible issuer prefix for the
//     length (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay,
//     Maestro, Mir) and a valid Luhn digit.
//   - pii.iban: registered country code, exact per-country length, unbroken
//     or in groups of four, ISO 7064 mod-97 check.
//   - pii.us_ssn: 123-45-6789 or 123 45 6789, excluding area 000, 666 and
//     900-999, group 00, serial 0000 and the two voided numbers.
//   - pii.ip: dotted IPv4 with octets 0-255 without leading zeros (not
//     version strings: 1.2.3, 1.2.3.4.5, v1.2.3.4), and IPv6 with at least
//     two groups and a decimal digit (not clock times or MAC addresses).
//   - secret.aws_access_key (AKIA/ASIA/ABIA/ACCA/A3T + 16),
//     secret.github_token (ghp_/gho_/ghu_/ghs_/ghr_, github_pat_),
//     secret.slack_token (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xoxe-, xapp-,
//     hooks.slack.com/services/T…),
//     secret.stripe_key (sk_/rk_ live and test, whsec_),
//     secret.google_api_key (AIza + 35), secret.openai_key (sk-proj-,
//     sk-svcacct-, sk-admin-, sk-None-, legacy sk- with mixed characters),
//     secret.anthropic_key (sk-ant-), secret.tollgate_key
//     (tgk_ + 12 + _ + 49 base62): a prefix at a word start, a body from the
//     key's alphabet within its length range, and no word character after.
//   - secret.jwt: three (or five) base64url parts whose header decodes to a
//     JSON object with "alg" or "enc" and whose payload is a JSON object.
//   - secret.private_key: a PEM "-----BEGIN ... PRIVATE KEY-----" header
//     through its END line; without one, through the body lines after it.
//   - injection.phrase: a documented heuristic list of phrases (see
//     phrases.go), for audit or for blocking where prompts do not discuss
//     prompt injection.
//   - custom.<name>: a profile's own RE2 expression or literal list.
//
// # Performance
//
// Detection is one pass over each normalized string. The loop reads each
// byte once through a 256-entry trigger table and skips whole words; at a
// word start it tests the word's first two bytes against a 64 Ki-bit set of
// anchors (AK, gh, xo, sk, ey, tg, IBAN country codes, the first words of
// the injection phrases, custom literals). Hand-written verifiers run only
// where an anchor, a digit cluster, '@', '+', '(', ':' or "-----" fires, and
// look at a bounded window. Custom expressions run once per string with Go's
// linear-time regexp, which itself skips to a literal prefix when the
// expression has one. Scratch space is pooled (and wiped after use): a clean
// 4 KiB chat body costs about 16 µs (4 µs of it parsing) and no allocation
// on one core, against about 1.1 ms for a loop of independent regular
// expressions (see bench_test.go).
//
// # Streams
//
// StreamScanner redacts a stream of response text with a carry-over window:
// see its documentation for what it holds back and why a block rule acts as
// redact mid-stream.
//
// SSERedactor applies it to a whole text/event-stream response as Envoy
// delivers it, chunk by chunk: it parses events with llm.SSEParser, gives
// each text of the response (a chat choice's content, a tool call's
// arguments, a Responses output part, a Messages content block) its own
// scanner, rewrites each delta to what the scanner releases, and releases
// held text in the event that ends the text or in a synthesized event just
// before it. Events that carry no text pass byte-identical (but for
// Responses sequence numbers, renumbered to stay unique around synthesized
// events, and removed logprobs); events that repeat full text (Responses
// "*.done", response.completed) are scanned whole like a JSON response. An
// event it cannot read is a scan failure and, fail closed, is dropped. See
// SSERedactor for the per-endpoint details.
package guard
