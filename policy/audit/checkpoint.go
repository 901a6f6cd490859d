package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"time"
)

// Checkpoint layout. A checkpoint is one line:
//
//	B' + `,"sig":"` + hex(Ed25519(priv, checkpointContext + B)) + `"}` + "\n"
//
// where B = B' + "}" is
//
//	{"v":1,"type":"checkpoint","seq":N,"last_mac":"<hex>","count":C,"first_seq":F,"chain_file":K,"reason":"rotate","time":"<RFC 3339>"}
//
// seq and last_mac are those of the last chained record before it, and count
// is the number of chained records in the same file since the file's start or
// its previous checkpoint; first_seq is the seq of the first of them (or the
// from_seq of a gap record before them). chain_file is the position of the file
// among the files of its chain (1 for the file the chain starts in, one more
// after each rotation), and reason says why the checkpoint was written:
// "rotate" (the chain goes on in another file) or "close" (the sink was
// closed: the chain ends here). Together they let Verify tell that whole files
// are missing at either end of a set. Checkpoints written before these three
// members existed lack all of them. The context string keeps these signatures
// from being valid for anything else signed with the same key.
const (
	checkpointContext = "tollgate audit checkpoint v1\n"
	checkpointPrefix  = `{"v":1,"type":"checkpoint",`
	sigKey            = `,"sig":"`
	sigHexLen         = 2 * ed25519.SignatureSize
	sigSuffixLen      = len(sigKey) + sigHexLen + len(`"}`)
)

// Checkpoint reasons.
const (
	// reasonRotate: the file was rotated; the chain goes on in the next file.
	reasonRotate = "rotate"
	// reasonClose: the sink was closed; the chain ends with this checkpoint.
	reasonClose = "close"
)

// checkpointRecord is the parsed content of a checkpoint record. FirstSeq,
// ChainFile and Reason are zero in a legacy checkpoint (written before they
// existed).
type checkpointRecord struct {
	V         int       `json:"v"`
	Type      string    `json:"type"`
	Seq       uint64    `json:"seq"`
	LastMAC   string    `json:"last_mac"`
	Count     uint64    `json:"count"`
	FirstSeq  uint64    `json:"first_seq,omitempty"`
	ChainFile uint64    `json:"chain_file,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Time      time.Time `json:"time"`
}

// legacy reports whether cp was written before checkpoints said why they were
// written and which file of their chain they close.
func (cp checkpointRecord) legacy() bool { return cp.Reason == "" }

// signCheckpoint returns the signed checkpoint line for cp, stamped with its
// version and type.
func signCheckpoint(priv ed25519.PrivateKey, cp checkpointRecord) []byte {
	cp.V, cp.Type, cp.Time = SchemaVersion, "checkpoint", cp.Time.UTC()
	body, _ := json.Marshal(cp)
	return signLine(priv, checkpointContext, body)
}

// signLine returns body (a JSON object) as one line with an Ed25519 signature
// over context + body appended as its last member, "sig".
func signLine(priv ed25519.PrivateKey, context string, body []byte) []byte {
	sig := ed25519.Sign(priv, append([]byte(context), body...))
	line := make([]byte, 0, len(body)-1+sigSuffixLen+1)
	line = append(line, body[:len(body)-1]...)
	line = append(line, sigKey...)
	line = hex.AppendEncode(line, sig)
	return append(line, '"', '}', '\n')
}

// isCheckpoint reports whether line is (claims to be) a checkpoint record.
func isCheckpoint(line []byte) bool { return bytes.HasPrefix(line, []byte(checkpointPrefix)) }

// parseCheckpoint splits a checkpoint line (without newline) into its parsed
// body, the signed bytes B and the signature. It is strict: lowercase hex, no
// unknown members, and either all of first_seq, chain_file and reason or none
// of them (a legacy checkpoint).
func parseCheckpoint(line []byte) (checkpointRecord, []byte, []byte, bool) {
	var cp checkpointRecord
	body, sig, ok := parseSigned(line, checkpointPrefix, &cp)
	if !ok || cp.V != SchemaVersion || cp.Type != "checkpoint" || !isMAC(cp.LastMAC) {
		return checkpointRecord{}, nil, nil, false
	}
	switch cp.Reason {
	case "":
		ok = cp.FirstSeq == 0 && cp.ChainFile == 0
	case reasonRotate, reasonClose:
		ok = cp.FirstSeq >= 1 && cp.FirstSeq <= cp.Seq && cp.ChainFile >= 1
	default:
		ok = false
	}
	if !ok {
		return checkpointRecord{}, nil, nil, false
	}
	return cp, body, sig, true
}

// parseSigned splits a signed line (without newline) that starts with prefix
// into the signed bytes B and the signature, and decodes B into v, strictly:
// lowercase hex and no unknown members.
func parseSigned(line []byte, prefix string, v any) ([]byte, []byte, bool) {
	if len(line) < len(prefix)+sigSuffixLen || !bytes.HasPrefix(line, []byte(prefix)) || !bytes.HasSuffix(line, []byte(`"}`)) {
		return nil, nil, false
	}
	head := line[:len(line)-sigSuffixLen]
	suffix := line[len(head):]
	sigHex := suffix[len(sigKey) : len(sigKey)+sigHexLen]
	if !bytes.HasPrefix(suffix, []byte(sigKey)) || !isLowerHex(sigHex) {
		return nil, nil, false
	}
	sig, err := hex.DecodeString(string(sigHex))
	if err != nil {
		return nil, nil, false
	}
	body := append(bytes.Clone(head), '}')
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		return nil, nil, false
	}
	return body, sig, true
}

// isMAC reports whether s is a mac as records carry it: 64 lowercase hex.
func isMAC(s string) bool { return len(s) == macHexLen && isLowerHex([]byte(s)) }

// verifyCheckpoint checks sig over body with pub.
func verifyCheckpoint(pub ed25519.PublicKey, body, sig []byte) bool {
	return ed25519.Verify(pub, append([]byte(checkpointContext), body...), sig)
}

// GenerateCheckpointKey returns a new Ed25519 key pair for signing checkpoints
// in development setups: the private key (for FileSinkConfig.CheckpointKey;
// persist it with MarshalCheckpointPrivateKey) and the public key as a PEM
// "PUBLIC KEY" block (PKIX), the form `tollgate audit verify --checkpoint-pub`
// reads. Production keys belong in a secret store.
func GenerateCheckpointKey() (ed25519.PrivateKey, []byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate checkpoint key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("generate checkpoint key: %w", err)
	}
	return priv, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// MarshalCheckpointPrivateKey returns priv as a PEM "PRIVATE KEY" block
// (PKCS #8), the form ParseCheckpointPrivateKey reads. The result is a secret.
func MarshalCheckpointPrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, ErrBadCheckpointKey
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, ErrBadCheckpointKey
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseCheckpointPrivateKey reads an Ed25519 private key from a PEM "PRIVATE
// KEY" block (PKCS #8) or from standard base64 of the 32-byte seed. Errors
// never include the input.
func ParseCheckpointPrivateKey(data []byte) (ed25519.PrivateKey, error) {
	data = bytes.TrimSpace(data)
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "PRIVATE KEY" {
			return nil, ErrBadCheckpointKey
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, ErrBadCheckpointKey
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, ErrBadCheckpointKey
		}
		return priv, nil
	}
	seed, err := base64.StdEncoding.DecodeString(string(data))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, ErrBadCheckpointKey
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// ParseCheckpointPublicKey reads an Ed25519 public key from a PEM "PUBLIC KEY"
// block (PKIX, as GenerateCheckpointKey and `openssl pkey -pubout` write it) or
// from standard base64 of the raw 32 bytes.
func ParseCheckpointPublicKey(data []byte) (ed25519.PublicKey, error) {
	data = bytes.TrimSpace(data)
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "PUBLIC KEY" {
			return nil, ErrBadCheckpointKey
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, ErrBadCheckpointKey
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, ErrBadCheckpointKey
		}
		return pub, nil
	}
	raw, err := base64.StdEncoding.DecodeString(string(data))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, ErrBadCheckpointKey
	}
	return ed25519.PublicKey(raw), nil
}
