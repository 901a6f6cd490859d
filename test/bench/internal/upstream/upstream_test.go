package upstream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestIsStream(t *testing.T) {
	tests := []struct {
		body string
		want bool
	}{
		{`{"model":"m","stream":true}`, true},
		{`{"model":"m","stream" : true}`, true},
		{`{"model":"m","stream":false}`, false},
		{`{"model":"m"}`, false},
		{`{"stream_options":{"include_usage":true}}`, false},
		{`{"stream"`, false},
	}
	for _, tc := range tests {
		t.Run(tc.body, func(t *testing.T) { require.Equal(t, tc.want, isStream([]byte(tc.body))) })
	}
}

// TestShapes: the JSON reply and the SSE events are valid and have the sizes asked for.
func TestShapes(t *testing.T) {
	reply := jsonReply(1024)
	require.InDelta(t, 1024, len(reply), 2)
	var v struct {
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	require.NoError(t, json.Unmarshal(reply, &v))
	require.Equal(t, 1000, v.Usage.PromptTokens)

	evs := sseEvents(200, 150)
	require.Len(t, evs, 202)
	for i, ev := range evs[:201] {
		if i < 200 {
			require.InDelta(t, 150, len(ev), 2)
		}
		data, ok := strings.CutPrefix(string(ev), "data: ")
		require.True(t, ok)
		require.True(t, json.Valid([]byte(strings.TrimSuffix(data, "\n\n"))), "%s", ev)
	}
	require.Contains(t, string(evs[200]), `"usage"`)
	require.Equal(t, "data: [DONE]\n\n", string(evs[201]))
}

// TestServe: JSON or SSE by the body; the provider key and the marker are counted.
func TestServe(t *testing.T) {
	up := New("sk-provider", "secret@example.com")
	up.SetShape(Shape{ReplyBytes: 512, Chunks: 3, ChunkBytes: 150, Cadence: time.Millisecond})
	srv := httptest.NewServer(up)
	defer srv.Close()
	post := func(body, auth string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		return resp
	}
	resp := post(`{"model":"m","messages":[{"role":"user","content":"mail secret@example.com"}]}`, "Bearer sk-provider")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.InDelta(t, 512, len(b), 2)

	resp = post(`{"model":"m","stream":true}`, "Bearer tgk_virtual")
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	var events int
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			events++
		}
	}
	resp.Body.Close()
	require.Equal(t, 5, events, "3 content events, usage, [DONE]")

	_ = post(`{"content":"secret@example.com"}`, "Bearer tgk_virtual").Body.Close()
	require.Equal(t, Stats{Requests: 3, Streams: 1, ProviderKey: 1, Marker: 2, MarkerWithPK: 1}, up.Stats())
}

func TestControl(t *testing.T) {
	up := New("k", "")
	ctl := httptest.NewServer(up.ControlHandler())
	defer ctl.Close()
	put := func(body string) int {
		req, _ := http.NewRequest(http.MethodPut, ctl.URL+"/shape", bytes.NewBufferString(body))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusNoContent, put(`{"reply_bytes":2048,"chunks":5,"chunk_bytes":200,"cadence":1000000}`))
	up.mu.RLock()
	require.Equal(t, Shape{ReplyBytes: 2048, Chunks: 5, ChunkBytes: 200, Cadence: time.Millisecond}, up.shape)
	require.Len(t, up.chunk, 7)
	up.mu.RUnlock()
	for _, bad := range []string{`{"reply_bytes":1,"chunks":5,"chunk_bytes":200}`, `{"reply_bytes":2048,"chunks":0,"chunk_bytes":200}`,
		`{"reply_bytes":2048,"chunks":5,"chunk_bytes":200,"cadence":-1}`, `not json`} {
		require.Equal(t, http.StatusBadRequest, put(bad), bad)
	}
	resp, err := http.Get(ctl.URL + "/stats")
	require.NoError(t, err)
	defer resp.Body.Close()
	var s Stats
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
}
