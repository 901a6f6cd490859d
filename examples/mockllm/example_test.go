package mockllm_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tollgate-ai/tollgate/examples/mockllm"
)

// A mock OpenAI upstream on a loopback port, as the local trial and the e2e tests use it.
func ExampleNew() {
	mock := mockllm.New(mockllm.Options{OpenAIKey: "sk-fake-upstream", Chunks: 3, Record: true})
	srv := httptest.NewServer(mock)
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi!"}]}`))
	req.Header.Set("Authorization", "Bearer sk-fake-upstream")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()

	var out struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.StatusCode, out.Model)
	fmt.Println(out.Choices[0].Message.Content)
	fmt.Println(out.Usage.PromptTokens, out.Usage.CompletionTokens, out.Usage.TotalTokens)
	fmt.Println(len(mock.Requests()), mock.Requests()[0].Path)
	// Output:
	// 200 gpt-4o-mini
	// This is a mock response from gpt-4o-mini.
	// 1 3 4
	// 1 /v1/chat/completions
}
