package secrets_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/secrets"
)

func resolvedValue(t *testing.T) secrets.Value {
	t.Helper()
	t.Setenv("TOLLGATE_TEST_LEAK", fakeSecret)
	v, err := secrets.Ref{Kind: "env", Target: "TOLLGATE_TEST_LEAK"}.Resolve("")
	require.NoError(t, err)
	return v
}

// requireNoLeak fails if out shows the secret in any common encoding.
func requireNoLeak(t *testing.T, out string) {
	t.Helper()
	for _, enc := range []string{
		fakeSecret,
		"0123456789abcdef",                        // a distinctive part
		fmt.Sprintf("%x", fakeSecret),             // hex
		fmt.Sprintf("%v", []byte(fakeSecret)[:6]), // decimal bytes, "[115 107 ..."
		strings.Trim(fmt.Sprintf("%v", []byte(fakeSecret)[:6]), "[]"),
	} {
		require.NotContains(t, out, enc)
	}
}

func TestValueNeverPrintsSecret(t *testing.T) {
	v := resolvedValue(t)
	require.Equal(t, fakeSecret, v.Reveal())
	require.Equal(t, []byte(fakeSecret), v.Bytes())
	require.Equal(t, len(fakeSecret), v.Len())

	type exported struct {
		Name string
		Key  secrets.Value
	}
	type unexported struct {
		name string
		key  secrets.Value
	}
	ex := exported{Name: "openai", Key: v}
	un := unexported{name: "openai", key: v}

	outputs := map[string]string{
		"verbs":            fmt.Sprintf("%v %+v %#v %s", v, v, v, v),
		"more verbs":       fmt.Sprintf("%q %x %X %d %10.3s %T %p", v, v, v, v, v, v, v),
		"pointer":          fmt.Sprintf("%v %+v %#v %s", &v, &v, &v, &v),
		"exported field":   fmt.Sprintf("%v %+v %#v", ex, ex, ex),
		"unexported field": fmt.Sprintf("%v %+v %#v", un, un, un),
		"slice and map":    fmt.Sprintf("%v %#v", []secrets.Value{v}, map[string]secrets.Value{"k": v}),
		"println":          fmt.Sprintln(v, &v),
	}
	for _, x := range []any{v, &v, ex, map[string]secrets.Value{"k": v}, map[secrets.Value]int{v: 1}} {
		b, err := json.Marshal(x)
		require.NoError(t, err)
		outputs[fmt.Sprintf("json %T", x)] = string(b)
		require.True(t, json.Valid(b))
	}
	txt, err := v.MarshalText()
	require.NoError(t, err)
	outputs["text"] = string(txt)

	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("resolved", "key", v, "cfg", ex)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("resolved", "key", v, "ptr", &v)
	outputs["slog"] = buf.String()

	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			requireNoLeak(t, out)
			if name != "unexported field" {
				require.Contains(t, out, secrets.Redacted)
			}
		})
	}
	require.Equal(t, `"[REDACTED]"`, mustJSON(t, v))
	require.Equal(t, `{"Name":"openai","Key":"[REDACTED]"}`, mustJSON(t, ex))
}

func mustJSON(t *testing.T, x any) string {
	t.Helper()
	b, err := json.Marshal(x)
	require.NoError(t, err)
	return string(b)
}

func TestValueIsImmutable(t *testing.T) {
	src := []byte("abc")
	v := secrets.NewValue(src)
	src[0] = 'X'
	require.Equal(t, "abc", v.Reveal())
	b := v.Bytes()
	b[0] = 'Y'
	require.Equal(t, "abc", v.Reveal())
}

func TestValueZero(t *testing.T) {
	var v secrets.Value
	require.Zero(t, v.Len())
	require.Empty(t, v.Reveal())
	require.Nil(t, v.Bytes())
	require.Equal(t, secrets.Redacted, v.String())
}
