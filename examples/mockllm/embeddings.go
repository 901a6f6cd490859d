package mockllm

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math"
	"net/http"
	"unicode/utf8"
)

// embeddingDims is the length of every mock embedding.
const embeddingDims = 8

type embeddingList struct {
	Object string          `json:"object"`
	Data   []embeddingItem `json:"data"`
	Model  string          `json:"model"`
	Usage  embeddingUsage  `json:"usage"`
}

type embeddingItem struct {
	Object string `json:"object"`
	Index  int    `json:"index"`
	// Embedding is a []float32, or a base64 string of little-endian float32s when the request
	// asked for encoding_format "base64" (the OpenAI Python SDK does so by default).
	Embedding any `json:"embedding"`
}

type embeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// embeddings serves POST /v1/embeddings. Input is a string or a non-empty array of strings;
// token-id arrays are not supported.
func (s *Server) embeddings(w http.ResponseWriter, r *http.Request, body []byte) {
	if !s.openAIAuthorized(w, r) {
		return
	}
	f, ok := parseJSON(w, r, dialectOpenAI, body)
	if !ok {
		return
	}
	model, fe := f.str("model")
	if fe != fieldOK {
		writeError(w, dialectOpenAI, http.StatusBadRequest, openAIFieldError("model", fe, "a string"))
		return
	}
	inputs, ae := embeddingInputs(f)
	if ae != nil {
		writeError(w, dialectOpenAI, http.StatusBadRequest, *ae)
		return
	}
	b64 := false
	switch format, fe := f.str("encoding_format"); {
	case fe == fieldWrongType:
		writeError(w, dialectOpenAI, http.StatusBadRequest, openAIFieldError("encoding_format", fe, "a string"))
		return
	case format == "base64":
		b64 = true
	case fe == fieldMissing, format == "float":
	default:
		writeError(w, dialectOpenAI, http.StatusBadRequest,
			errParam("encoding_format", "Invalid value for 'encoding_format': expected 'float' or 'base64'."))
		return
	}

	out := embeddingList{Object: "list", Model: model, Data: make([]embeddingItem, 0, len(inputs))}
	chars := 0
	for i, in := range inputs {
		chars += utf8.RuneCountInString(in)
		v := embed(in)
		item := embeddingItem{Object: "embedding", Index: i, Embedding: v}
		if b64 {
			item.Embedding = encodeFloats(v)
		}
		out.Data = append(out.Data, item)
	}
	tokens := tokensFor(chars)
	out.Usage = embeddingUsage{PromptTokens: tokens, TotalTokens: tokens}
	writeJSON(w, http.StatusOK, out)
}

func embeddingInputs(f fields) ([]string, *apiError) {
	raw, ok := f.raw("input")
	if !ok {
		ae := openAIFieldError("input", fieldMissing, "")
		return nil, &ae
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if json.Unmarshal(raw, &many) != nil || len(many) == 0 {
		ae := errParam("input", "Invalid type for 'input': expected a string or a non-empty array of strings.")
		return nil, &ae
	}
	return many, nil
}

// embed derives a unit vector from text: FNV-1a seeds a splitmix64 sequence, so equal inputs
// give equal vectors across runs and machines.
func embed(text string) []float32 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(text))
	x := h.Sum64()
	v := make([]float32, embeddingDims)
	var norm float64
	for i := range v {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		f := float64(z>>11)/(1<<53)*2 - 1 // uniform in [-1, 1)
		v[i] = float32(f)
		norm += f * f
	}
	if norm > 0 {
		n := math.Sqrt(norm)
		for i := range v {
			v[i] = float32(float64(v[i]) / n)
		}
	}
	return v
}

func encodeFloats(v []float32) string {
	b := make([]byte, 0, 4*len(v))
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}
