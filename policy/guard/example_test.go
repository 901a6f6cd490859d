package guard_test

import (
	"fmt"

	"github.com/tollgate-ai/tollgate/policy/guard"
	"github.com/tollgate-ai/tollgate/policy/llm"
)

func ExampleEngine_ScanRequest() {
	e, err := guard.Compile(guard.ProfileConfig{
		Name: "default",
		Rules: []guard.RuleConfig{
			{ID: "no-emails", Detector: "pii.email", Action: "redact"},
			{ID: "no-aws-keys", Detector: "secret.aws_access_key", Action: "block"},
		},
	})
	if err != nil {
		panic(err)
	}
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"Write to jane@example.com"}]}`)
	r, err := e.ScanRequest("default", llm.ChatCompletions, body)
	if err != nil {
		panic(err) // a 400: malformed JSON or a duplicate key
	}
	fmt.Println(r.Decision)
	fmt.Println(string(r.NewBody))
	fmt.Printf("%+v\n", r.Totals())
	// Output:
	// redact
	// {"model":"gpt-4o","messages":[{"role":"user","content":"Write to [EMAIL_1]"}]}
	// [{RuleID:no-emails Detector:pii.email Action:redact Count:1 Path: Failed:false}]
}

func ExampleStreamScanner() {
	e, err := guard.Compile(guard.ProfileConfig{
		Name:  "default",
		Rules: []guard.RuleConfig{{ID: "no-emails", Detector: "pii.email", Action: "redact"}},
	})
	if err != nil {
		panic(err)
	}
	s, err := e.NewStreamScanner("default", "choices[0].delta.content")
	if err != nil {
		panic(err)
	}
	for _, delta := range []string{"Reach me at ja", "ne@exam", "ple.com or ", "by phone."} {
		fmt.Printf("%q\n", s.Push([]byte(delta)))
	}
	fmt.Printf("%q\n", s.Flush())
	// Output:
	// "Reach me at "
	// ""
	// "[EMAIL_1] or "
	// "by "
	// "phone."
}
