package policy

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// KEKConfig is one key-encryption key: the id sealed values name, and a reference to its
// material (env:NAME or file:PATH holding 32 bytes in base64 or hex). The material never
// sits in the config file, and a KEK cannot itself be sealed.
type KEKConfig struct {
	ID  string `mapstructure:"id"`
	Key string `mapstructure:"key"`
}

// CredentialsConfig lists a provider's credentials, so its key rotates without a failed
// request. Tollgate sends Next when it is set, otherwise Primary. Rotation: create the new
// key at the provider (both keys are valid there), set next (a reload: new requests carry
// the new key; deleting next rolls back), revoke the old key at the provider once every
// Tollgate replica runs the new config and the streams that started before have ended,
// then move next to primary at leisure (no change in what is sent). Every listed
// credential must resolve, so a typo in next is refused at reload, never sent.
type CredentialsConfig struct {
	Primary string `mapstructure:"primary"`
	Next    string `mapstructure:"next"`
}

// Credential slot names, as Snapshot.CredentialSlots reports them.
const (
	SlotPrimary     = "primary"
	SlotNext        = "next"
	SlotNone        = "none"        // credential: none (openai-compatible without a key)
	SlotUnavailable = "unavailable" // an optional provider whose credential did not resolve
)

// credentialSlot is one configured credential of a provider.
type credentialSlot struct {
	field string // config path below providers[i]
	slot  string // SlotPrimary or SlotNext
	ref   string
}

// credentialSlots returns the provider's configured credentials, the one to send last.
// credential: X means credentials: {primary: X}.
func (p ProviderConfig) credentialSlots() []credentialSlot {
	if p.Credential != "" {
		return []credentialSlot{{field: "credential", slot: SlotPrimary, ref: p.Credential}}
	}
	var out []credentialSlot
	if p.Credentials.Primary != "" {
		out = append(out, credentialSlot{field: "credentials.primary", slot: SlotPrimary, ref: p.Credentials.Primary})
	}
	if p.Credentials.Next != "" {
		out = append(out, credentialSlot{field: "credentials.next", slot: SlotNext, ref: p.Credentials.Next})
	}
	return out
}

// validateKEKs checks security.keks and returns the set of ids.
func (c *Config) validateKEKs(add func(string, string, ...any)) map[string]bool {
	ids := map[string]bool{}
	for i, k := range c.Security.KEKs {
		path := fmt.Sprintf("security.keks[%d]", i)
		switch {
		case !secrets.ValidKEKID(k.ID):
			add(path+".id", "must be 1-%d characters of [A-Za-z0-9_-]", secrets.MaxKEKIDLen)
		case ids[k.ID]:
			add(path+".id", "duplicate KEK id %q", k.ID)
		}
		ids[k.ID] = true
		if _, err := secrets.ParseRef(k.Key); err != nil {
			// Never echo the value: it may be the key itself.
			add(path+".key", "must be a secret reference (env:NAME or file:PATH) to the KEK, never the key itself")
		}
	}
	return ids
}

// validateCredentials checks a provider's credential fields: references or sealed values
// naming a configured KEK, never a value (which is never echoed).
func validateCredentials(path string, p ProviderConfig, keks map[string]bool, add func(string, string, ...any)) {
	if p.Credential != "" && (p.Credentials.Primary != "" || p.Credentials.Next != "") {
		add(path+".credential", "set credential or credentials, not both")
		return
	}
	if p.Credential == "none" {
		if p.Type != ProviderOpenAICompatible {
			add(path+".credential", "\"none\" is only allowed for openai-compatible providers")
		}
		return
	}
	if p.Credential == "" && p.Credentials.Primary == "" {
		field := ".credential"
		if p.Credentials.Next != "" {
			field = ".credentials.primary"
		}
		add(path+field, "is required (env:NAME, file:PATH or sealed:...)")
		return
	}
	for _, s := range p.credentialSlots() {
		field := path + "." + s.field
		if !secrets.IsSealed(s.ref) {
			if _, err := secrets.ParseRef(s.ref); err != nil {
				add(field, "must be a secret reference (env:NAME, file:PATH or sealed:...), not a key")
			}
			continue
		}
		sv, err := secrets.ParseSealed(s.ref)
		switch {
		case err != nil:
			add(field, "%v", err) // fixed texts, never the value
		case !keks[sv.KEKID]:
			add(field, "is sealed under KEK %q, which security.keks does not list", sv.KEKID)
		}
	}
}

// LoadKeyring resolves the KEKs of security.keks (references, resolved against baseDir
// with res) into a keyring. Wipe it once the sealed values are opened. Errors name the KEK
// by index and id, never its material; with an error, the keyring holds the KEKs that did
// load (nil when two share an id), so values under those still open and the others report
// their KEK as not loaded.
func LoadKeyring(keks []KEKConfig, baseDir string, res Resolver) (*secrets.Keyring, error) {
	var errs []error
	loaded := make([]*secrets.KEK, 0, len(keks))
	for i, kc := range keks {
		path := fmt.Sprintf("security.keks[%d] (%s)", i, kc.ID)
		ref, err := secrets.ParseRef(kc.Key)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		v, err := res.Resolve(ref, baseDir)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		b := v.Bytes()
		k, err := secrets.ParseKEK(kc.ID, b)
		clear(b)
		v.Wipe()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		loaded = append(loaded, k)
	}
	ring, err := secrets.NewKeyring(loaded...)
	if err != nil {
		for _, k := range loaded {
			k.Wipe()
		}
		return nil, fmt.Errorf("security.keks: %w", err)
	}
	return ring, errors.Join(errs...)
}

// credential is a provider's outgoing credential header value, decrypted in memory only.
// Its bytes are zeroed by a runtime cleanup once nothing references it: not the snapshot
// that holds it, nor a Forward decided with it (Forward keeps a pointer). A reload swaps in
// a new snapshot and the streams still using the old one keep it alive until they end; no
// explicit release is needed, and none could know when the last stream is done. Best
// effort: the gRPC encoder's buffers and anything the runtime copied are not zeroed.
type credential struct {
	value []byte // full header value, e.g. "Bearer sk-..."
	slot  string // SlotPrimary or SlotNext
}

func newCredential(value []byte, slot string) *credential {
	c := &credential{value: value, slot: slot}
	runtime.AddCleanup(c, func(b []byte) { clear(b) }, value)
	return c
}

// compileCredential resolves every configured credential of providers[i] (env, file or
// sealed with ring) and returns the one to send (next when set, else primary) and its
// header name. Every listed credential must resolve; for an optional provider a failure
// gives a warning instead, and the provider is unavailable when the one to send failed.
// Intermediate plaintext is zeroed.
func compileCredential(i int, pc ProviderConfig, baseDir string, res Resolver, ring *secrets.Keyring) (
	header string, cred *credential, available bool, warnings []string, errs []error) {
	slots := pc.credentialSlots()
	if pc.Credential == "none" || len(slots) == 0 {
		return "", nil, true, nil, nil
	}
	available = true
	send := len(slots) - 1
	for j, s := range slots {
		v, err := resolveCredential(s.ref, baseDir, res, ring)
		switch {
		case err != nil && pc.Optional && j == send:
			available = false
			warnings = append(warnings, fmt.Sprintf("providers[%d] %s disabled: %s %s not available (%v)",
				i, pc.Name, s.field, describeRef(s.ref), err))
			continue
		case err != nil && pc.Optional:
			warnings = append(warnings, fmt.Sprintf("providers[%d] %s: %s %s not available (%v); it is not sent",
				i, pc.Name, s.field, describeRef(s.ref), err))
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("providers[%d].%s: %w", i, s.field, err))
			continue
		}
		b := v.Bytes()
		v.Wipe()
		if !validHeaderValue(b) {
			errs = append(errs, fmt.Errorf("providers[%d].%s: %s holds characters not allowed in a header value",
				i, s.field, describeRef(s.ref)))
		} else if j == send {
			header, cred = credentialHeader(pc.Type), newCredential(credentialValue(pc.Type, b), s.slot)
		}
		clear(b)
	}
	return header, cred, available, warnings, errs
}

// resolveCredential opens a sealed value with ring, or resolves an env: or file: reference.
func resolveCredential(ref, baseDir string, res Resolver, ring *secrets.Keyring) (secrets.Value, error) {
	if secrets.IsSealed(ref) {
		return ring.Open(ref)
	}
	r, err := secrets.ParseRef(ref)
	if err != nil {
		return secrets.Value{}, err
	}
	return res.Resolve(r, baseDir)
}

// describeRef names a credential reference for logs: env:NAME and file:PATH as they are, a
// sealed value by its KEK id only.
func describeRef(ref string) string {
	if secrets.IsSealed(ref) {
		if sv, err := secrets.ParseSealed(ref); err == nil {
			return "sealed under KEK " + sv.KEKID
		}
		return "sealed value"
	}
	if r, err := secrets.ParseRef(ref); err == nil {
		return r.String()
	}
	return "reference"
}

// credentialHeader returns the header each provider type reads its key from.
func credentialHeader(typ string) string {
	switch typ {
	case ProviderAnthropic:
		return "x-api-key"
	case ProviderAzureOpenAI:
		return "api-key"
	default:
		return "authorization"
	}
}

// credentialValue returns the header value for key: the key itself, or "Bearer <key>" for
// the OpenAI-style providers, in a new slice the caller owns.
func credentialValue(typ string, key []byte) []byte {
	switch typ {
	case ProviderAnthropic, ProviderAzureOpenAI:
		return append([]byte(nil), key...)
	default:
		return append(append(make([]byte, 0, len("Bearer ")+len(key)), "Bearer "...), key...)
	}
}

// CredentialSlots reports, per provider name, which configured credential is sent: "primary",
// "next", "none" or "unavailable". It holds no secret and is safe to log or serve, so an
// operator can see that every replica sends the new key before revoking the old one.
func (s *Snapshot) CredentialSlots() map[string]string {
	out := make(map[string]string, len(s.providers))
	for name, p := range s.providers {
		switch {
		case !p.available:
			out[name] = SlotUnavailable
		case p.cred == nil:
			out[name] = SlotNone
		default:
			out[name] = p.cred.slot
		}
	}
	return out
}
