package jsonlex

import (
	"strings"
	"testing"
)

// benchText is chat-like text: mostly ASCII, some escapes and some non-ASCII.
var benchText = strings.Repeat(`Le chiffre d'affaires a progressé de "deux points" grâce au cloud.\n`, 64)

// benchCJK is text with few ASCII bytes.
var benchCJK = strings.Repeat(`收入增长了两个百分点，原因是云成本降低。\n`, 64)

func BenchmarkStr(b *testing.B) {
	body := []byte(`"` + strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=", 1<<10) + `"`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var l Lexer
		l.Reset(body, errInvalid, errDeep)
		if _, ok := l.Str(); !ok {
			b.Fatal(l.Err)
		}
	}
}

func BenchmarkUnquote(b *testing.B) {
	raw := []byte(benchText)
	dst := make([]byte, 0, len(raw))
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		dst, _ = Unquote(dst[:0], raw)
	}
}

func BenchmarkAppendQuoted(b *testing.B) {
	for _, text := range []struct{ name, s string }{{"mixed", benchText}, {"cjk", benchCJK}} {
		s := strings.ReplaceAll(text.s, `\n`, "\n")
		bs := []byte(s)
		dst := make([]byte, 0, 2*len(s))
		b.Run(text.name+"/string", func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				dst = AppendQuoted(dst[:0], s)
			}
		})
		b.Run(text.name+"/bytes", func(b *testing.B) {
			b.SetBytes(int64(len(bs)))
			for b.Loop() {
				dst = AppendQuoted(dst[:0], bs)
			}
		})
	}
}

// BenchmarkWalk validates a chat-like body of about 4 KiB with Object and
// Array: mostly small objects, so the per-member cost dominates.
func BenchmarkWalk(b *testing.B) {
	turn := `{"role":"user","content":"Explain the trade-offs of consistent hashing for cache clusters."}`
	body := []byte(`{"model":"gpt-4o","stream":true,"max_tokens":1024,"messages":[` +
		strings.Repeat(turn+",", 40) + turn + `],"temperature":0.2}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var l Lexer
		l.Reset(body, errInvalid, errDeep)
		if !l.Value(0) || !l.End() {
			b.Fatal(l.Err)
		}
	}
}
