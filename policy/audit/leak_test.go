package audit_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
	"github.com/tollgate-ai/tollgate/policy/keys"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// Planted values: none of them may appear in any sink's output.
const (
	plantedPrompt     = "PLANTED-PROMPT-the-merger-closes-on-friday"
	plantedCompletion = "PLANTED-COMPLETION-understood"
	plantedProvider   = "sk-proj-PLANTEDPROVIDERKEY0123456789"
	plantedHookToken  = "PLANTED-HOOK-TOKEN-abcdef"
	// plantedSealedKey is a provider key only ever configured sealed; the prompt carries
	// its sealed value and the KEK as well, as a user pasting a config would.
	plantedSealedKey = "sk-proj-PLANTEDSEALEDKEY9876543210"
)

// TestNoLeakInAnySink drives every sink with every content mode, with
// requests whose bodies carry a prompt and both kinds of keys, and searches
// all output for them (raw, hex and base64).
func TestNoLeakInAnySink(t *testing.T) {
	t.Parallel()
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	// A real virtual key, minted as `tollgate keys new` does, so the search below looks for
	// what a leak would actually contain: the whole token and its secret part.
	vk, err := keys.Generate(rand.Reader)
	require.NoError(t, err)
	plantedVirtualKey := vk.Reveal()
	kekText, err := secrets.GenerateKEK(rand.Reader)
	require.NoError(t, err)
	kek, err := secrets.ParseKEK("k1", []byte(kekText))
	require.NoError(t, err)
	ring, err := secrets.NewKeyring(kek)
	require.NoError(t, err)
	plantedSealed, err := ring.Seal("k1", []byte(plantedSealedKey), rand.Reader)
	require.NoError(t, err)
	tokenRE := regexp.MustCompile(keys.TokenPattern)
	for _, tc := range []struct {
		name      string
		mode      audit.ContentMode
		key       []byte
		recipient string
	}{
		{"off", audit.ContentOff, nil, ""},
		{"hash", audit.ContentHash, contentKey, ""},
		{"sealed", audit.ContentSealed, nil, id.Recipient().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			policy, err := audit.NewContentPolicy(tc.mode, tc.key, tc.recipient)
			require.NoError(t, err)

			var stdout syncBuffer
			dir := t.TempDir()
			fs, err := audit.NewFileSink(audit.FileSinkConfig{Path: filepath.Join(dir, "audit.log"), MaxBytes: 3000, CheckpointKey: ckPriv})
			require.NoError(t, err)
			rcv := newReceiver(t)
			wh, err := audit.NewWebhookSink(audit.WebhookConfig{URL: rcv.srv.URL, Authorization: secrets.NewValue([]byte("Bearer " + plantedHookToken))})
			require.NoError(t, err)
			var sinkErrs []string
			e := newEmitter(t, audit.EmitterConfig{OnSinkError: func(_ int, err error) { sinkErrs = append(sinkErrs, err.Error()) }},
				audit.NewWriterSink(&stdout, ckPriv), fs, wh)

			prompt := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"` + plantedPrompt +
				` use ` + plantedProvider + ` or ` + plantedSealedKey + ` (` + plantedSealed + `, KEK ` + kekText +
				`)"}],"api_key":"` + plantedVirtualKey + `"}`)
			completion := []byte(`data: {"choices":[{"delta":{"content":"` + plantedCompletion + `"}}]}`)
			for i, ev := range endings {
				ev := ev.ev
				require.NoError(t, policy.Apply(&ev, prompt, completion))
				if i%2 == 0 {
					ev.Content = nil // also the path where content stays off
				}
				e.Emit(&ev)
			}
			closeEmitter(t, e)

			outputs := map[string][]byte{"stdout": stdout.Bytes()}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			for _, en := range entries {
				b, err := os.ReadFile(filepath.Join(dir, en.Name()))
				require.NoError(t, err)
				outputs["file "+en.Name()] = b
			}
			bodies, _ := rcv.requests()
			require.NotEmpty(t, bodies)
			outputs["webhook"] = bytes.Join(bodies, nil)
			outputs["sink errors"] = []byte(strings.Join(sinkErrs, "\n"))
			outputs["policy"] = []byte(policy.String())

			planted := []string{plantedPrompt, plantedCompletion, plantedVirtualKey, vk.Secret, plantedProvider, plantedHookToken,
				string(contentKey), string(chainKey), plantedSealedKey, plantedSealed, kekText, plantedSealed[20:60]}
			for name, out := range outputs {
				for _, p := range planted {
					for _, form := range []string{p, hex.EncodeToString([]byte(p)), base64.StdEncoding.EncodeToString([]byte(p))} {
						require.False(t, bytes.Contains(out, []byte(form)), "%s leaks %q", name, p)
					}
				}
				require.False(t, tokenRE.Match(out), "%s holds a virtual key", name)
				// Fragments too: no 12-byte window of the prompt.
				for i := 0; i+12 <= len(plantedPrompt); i += 6 {
					require.False(t, bytes.Contains(out, []byte(plantedPrompt[i:i+12])), "%s leaks part of the prompt", name)
				}
			}
			require.Contains(t, string(outputs["stdout"]), `"request_id":"req-abort"`, "the events were written")
		})
	}
}
