package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// readmeBlocks returns README.md's fenced code blocks by language, and its inline code spans.
func readmeBlocks(t *testing.T) (map[string][]string, []string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	blocks := map[string][]string{}
	var prose strings.Builder
	lang, inBlock := "", false
	var cur strings.Builder
	for line := range strings.SplitSeq(string(raw), "\n") {
		if fence, ok := strings.CutPrefix(line, "```"); ok {
			if inBlock {
				blocks[lang] = append(blocks[lang], cur.String())
				cur.Reset()
			}
			inBlock, lang = !inBlock, strings.TrimSpace(fence)
			continue
		}
		if inBlock {
			cur.WriteString(line + "\n")
		} else {
			prose.WriteString(line + "\n")
		}
	}
	require.False(t, inBlock, "README.md has an unclosed code block")
	var spans []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(prose.String(), -1) {
		spans = append(spans, m[1])
	}
	return blocks, spans
}

// cliCommands finds every tollgate command line shown, joining shell continuations.
func cliCommands(text string) []string {
	text = strings.ReplaceAll(text, "\\\n", " ")
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "$ "))
		if strings.HasPrefix(line, "tollgate ") || strings.HasPrefix(line, "bin/tollgate ") {
			if i := strings.Index(line, " #"); i >= 0 {
				line = line[:i]
			}
			out = append(out, line)
		}
	}
	return out
}

// usageFlags runs `tollgate <sub> -h` and reads the flags it lists, each with whether it
// takes a value.
func usageFlags(t *testing.T, sub []string) map[string]bool {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append(append([]string{}, sub...), "-h"), &out, &out)
	require.True(t, errors.Is(err, flag.ErrHelp), "tollgate %s is not a command: %v\n%s", strings.Join(sub, " "), err, out.String())
	flags := map[string]bool{}
	// flag.PrintDefaults ("  -config string") or a hand-written usage ("  --chain-key REF").
	for _, m := range regexp.MustCompile(`(?m)^\s+--?([a-z][a-z0-9-]*)(?:[ =]([A-Za-z]+))?`).FindAllStringSubmatch(out.String(), -1) {
		flags[m[1]] = m[2] != ""
	}
	return flags
}

// positional lists the subcommands that take arguments after their flags.
var positional = map[string]bool{"audit verify": true}

// TestReadmeCommands checks every tollgate command line in README.md: the subcommand exists,
// every flag it shows is one the subcommand defines (with a value where it takes one), and
// code blocks call the binary where `make build` puts it.
func TestReadmeCommands(t *testing.T) {
	blocks, spans := readmeBlocks(t)
	var cmds []string
	for _, lang := range []string{"sh", "bash", ""} {
		for _, b := range blocks[lang] {
			for _, c := range cliCommands(b) {
				require.True(t, strings.HasPrefix(c, "bin/tollgate "), "code blocks run bin/tollgate (where make build puts it): %q", c)
				cmds = append(cmds, c)
			}
		}
	}
	for _, s := range spans {
		cmds = append(cmds, cliCommands(s)...)
	}
	require.GreaterOrEqual(t, len(cmds), 4, "the README shows the CLI: %q", cmds)

	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	require.NoError(t, err)
	require.Regexp(t, `(?m)^BIN\s*:=\s*bin/tollgate$`, string(mk), "make build writes bin/tollgate")

	for _, c := range cmds {
		t.Run(c, func(t *testing.T) {
			var toks []string
			for _, f := range strings.Fields(c)[1:] {
				if f = strings.Trim(f, "[]"); f != "" && f != "|" {
					toks = append(toks, f)
				}
			}
			var sub []string
			for len(toks) > 0 && !strings.HasPrefix(toks[0], "-") {
				sub, toks = append(sub, toks[0]), toks[1:]
			}
			require.NotEmpty(t, sub)
			flags := usageFlags(t, sub)
			for len(toks) > 0 {
				tok := toks[0]
				toks = toks[1:]
				name, ok := strings.CutPrefix(strings.TrimPrefix(tok, "-"), "-")
				if !ok && !strings.HasPrefix(tok, "-") {
					require.True(t, positional[strings.Join(sub, " ")], "unexpected argument %q", tok)
					continue
				}
				if !ok {
					name = strings.TrimPrefix(tok, "-")
				}
				name, _, hasValue := strings.Cut(name, "=")
				takesValue, defined := flags[name]
				require.True(t, defined, "tollgate %s has no flag --%s (it has %v)", strings.Join(sub, " "), name, flags)
				if takesValue && !hasValue {
					require.NotEmpty(t, toks, "--%s needs a value", name)
					require.False(t, strings.HasPrefix(toks[0], "--"), "--%s needs a value", name)
					toks = toks[1:]
				}
			}
		})
	}
}

// TestReadmePythonSnippets checks the SDK examples: each constructor with the arguments the
// trial needs (the trial's CA through each SDK's DefaultHttpxClient; Anthropic without /v1),
// and, when python3 is installed, that each snippet is valid Python. test/e2e runs them
// against a real stack with the pinned SDKs (TestReadmeSDKSnippetsRun).
func TestReadmePythonSnippets(t *testing.T) {
	blocks, _ := readmeBlocks(t)
	snippets := blocks["python"]
	all := strings.Join(snippets, "\n")
	for _, want := range []string{
		`openai.OpenAI(`, `base_url="https://localhost:8443/v1"`,
		`anthropic.Anthropic(`, `base_url="https://localhost:8443",`,
		`http_client=anthropic.DefaultHttpxClient(verify=".dev/tls/ca.crt")`,
		`http_client=openai.DefaultHttpxClient(verify=".dev/tls/ca.crt")`,
		`api_key=open(".dev/demo-key").read().strip()`,
	} {
		require.Contains(t, all, want)
	}
	for _, s := range snippets {
		require.Contains(t, s, `verify=".dev/tls/ca.crt"`, "every SDK example trusts the trial's CA:\n%s", s)
		if strings.Contains(s, "anthropic.") {
			require.NotContains(t, s, "8443/v1", "the Anthropic SDK adds /v1 itself")
		}
		// The SDKs' own DefaultHttpxClient keeps their settings; openai 3 no longer ships on
		// httpx (it uses httpx2), so `import httpx` would fail on a fresh install.
		require.NotContains(t, s, "httpx.Client(")
		require.NotContains(t, s, "import httpx")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Log("python3 not found: syntax not checked")
		return
	}
	for i, s := range snippets {
		cmd := exec.Command(py, "-c", "import ast, sys; ast.parse(sys.stdin.read())")
		cmd.Stdin = strings.NewReader(s)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "python snippet %d is not valid Python: %s\n%s", i, out, s)
	}
}

// TestReadmeListsEveryDirectDependency keeps the README's dependency table equal to go.mod's
// direct requirements, so a new dependency cannot arrive without saying why.
func TestReadmeListsEveryDirectDependency(t *testing.T) {
	root := filepath.Join("..", "..")
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	var direct []string
	inBlock := false
	for _, line := range strings.Split(string(mod), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "require (":
			inBlock = true
		case line == ")":
			inBlock = false
		case inBlock && line != "" && !strings.Contains(line, "// indirect"):
			direct = append(direct, strings.Fields(line)[0])
		}
	}
	require.NotEmpty(t, direct)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "**Dependencies.**")
	require.True(t, ok, "README has a **Dependencies.** section")
	section, _, _ = strings.Cut(section, "\n\n**")
	var listed []string
	row := regexp.MustCompile("^\\| `([a-z0-9./_-]+)` \\| ")
	for _, line := range strings.Split(section, "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			listed = append(listed, m[1])
		}
	}
	require.ElementsMatch(t, direct, listed, "README's dependency table and go.mod's direct requirements differ")
}
