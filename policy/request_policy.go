package policy

import (
	"math"
	"net/http"
	"strconv"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// RequestPolicyConfig constrains the shape of requests for a team or a key. When both set a
// constraint, both apply: the tighter cap binds.
type RequestPolicyConfig struct {
	// MaxOutputTokens caps the output a request may ask for (max_tokens and its variants). A
	// request without a cap gets this one written in.
	MaxOutputTokens int64 `mapstructure:"max_output_tokens"`
	// OverCap is what happens to a request asking for more: "clamp" (default) rewrites its cap,
	// "refuse" answers 400.
	OverCap string `mapstructure:"over_cap"`
	// MaxMessages caps the number of messages (or Responses input items).
	MaxMessages int `mapstructure:"max_messages"`
	// MaxChoices caps n and best_of, the completions a request asks the provider to generate
	// (and bill); 1 refuses n > 1. Whatever it allows, every choice is reserved and counted
	// against MaxOutputTokens.
	MaxChoices int64 `mapstructure:"max_choices"`
	// Streaming is "allow" (default) or "deny".
	Streaming string `mapstructure:"streaming"`
	// MaxRequestBytes caps the body size, below limits.max_request_bytes.
	MaxRequestBytes int `mapstructure:"max_request_bytes"`
}

func (r RequestPolicyConfig) validate(path string, add func(string, string, ...any)) {
	if r.MaxOutputTokens < 0 {
		add(path+".max_output_tokens", "must not be negative")
	}
	switch r.OverCap {
	case "", "clamp", "refuse":
	default:
		add(path+".over_cap", "must be clamp or refuse")
	}
	if r.MaxMessages < 0 {
		add(path+".max_messages", "must not be negative")
	}
	if r.MaxChoices < 0 {
		add(path+".max_choices", "must not be negative")
	}
	switch r.Streaming {
	case "", "allow", "deny":
	default:
		add(path+".streaming", "must be allow or deny")
	}
	if r.MaxRequestBytes < 0 {
		add(path+".max_request_bytes", "must not be negative")
	}
}

// requestPolicy is the compiled form of one RequestPolicyConfig.
type requestPolicy struct {
	maxOut      int64
	refuseOver  bool
	maxMessages int
	maxChoices  int64
	noStreaming bool
	maxBytes    int
}

func (r RequestPolicyConfig) compile() *requestPolicy {
	if r == (RequestPolicyConfig{}) {
		return nil
	}
	return &requestPolicy{maxOut: r.MaxOutputTokens, refuseOver: r.OverCap == "refuse", maxMessages: r.MaxMessages,
		maxChoices: r.MaxChoices, noStreaming: r.Streaming == "deny", maxBytes: r.MaxRequestBytes}
}

// checkShape applies the key's and team's request policies. It returns the per-choice output
// cap that binds (0: none), which rewrite enforces by clamping or writing it into the request.
// A policy's max_output_tokens bounds the whole request: a request for n choices (or best_of)
// gets at most max_output_tokens / n per choice.
func (s *Snapshot) checkShape(a *Admission, req llm.Request, size int) (perChoice int64, rep *Reply) {
	refuse := false
	var maxOut int64
	choices := max(req.Choices, 1)
	for _, rp := range [...]*requestPolicy{s.keyPolicy[a.Key.ID], s.teamPolicy[a.Key.Team]} {
		if rp == nil {
			continue
		}
		if rp.maxBytes > 0 && size > rp.maxBytes {
			return 0, a.tooLarge(rp.maxBytes)
		}
		if rp.noStreaming && req.Stream {
			return 0, a.denyParam(http.StatusForbidden, ReasonStreamingNotAllowed, "streaming is not allowed for this API key", "stream")
		}
		if rp.maxMessages > 0 && req.Messages > rp.maxMessages {
			return 0, a.denyParam(http.StatusBadRequest, ReasonTooManyMessages,
				"too many messages: at most "+strconv.Itoa(rp.maxMessages)+" are allowed", "messages")
		}
		if rp.maxChoices > 0 && choices > rp.maxChoices {
			return 0, a.denyParam(http.StatusBadRequest, ReasonTooManyChoices,
				"too many choices (n, best_of): at most "+strconv.FormatInt(rp.maxChoices, 10)+" are allowed for this API key", "n")
		}
		if rp.maxOut > 0 {
			if maxOut == 0 || rp.maxOut < maxOut {
				maxOut = rp.maxOut
			}
			if rp.refuseOver && satMul(req.MaxTokens, choices) > rp.maxOut {
				refuse = true
			}
		}
	}
	if refuse {
		return 0, a.denyParam(http.StatusBadRequest, ReasonMaxTokensExceeded,
			"the requested output (max tokens times n) is above the "+strconv.FormatInt(maxOut, 10)+" tokens allowed for this API key", req.MaxTokensField)
	}
	if maxOut == 0 {
		return 0, nil
	}
	if maxOut/choices == 0 {
		return 0, a.denyParam(http.StatusBadRequest, ReasonMaxTokensExceeded,
			"too many choices (n, best_of) for the "+strconv.FormatInt(maxOut, 10)+" output tokens allowed for this API key", "n")
	}
	return maxOut / choices, nil
}

// satMul is a*b for non-negative factors, saturating at the largest int64.
func satMul(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}
