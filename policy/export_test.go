package policy

// CredentialBytes returns the bytes of provider name's outgoing credential, shared with the
// snapshot (not a copy), so a test can watch them being zeroed.
func CredentialBytes(s *Snapshot, name string) []byte { return s.providers[name].cred.value }
