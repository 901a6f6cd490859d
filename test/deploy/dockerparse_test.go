package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// instruction is one Dockerfile instruction, continuation lines joined and comments removed.
type instruction struct {
	line int    // where it starts
	cmd  string // upper case: FROM, RUN, COPY, ...
	args string // the rest, trimmed
}

// exec returns the instruction's exec form (a JSON array of strings), if it is one.
func (in instruction) exec() ([]string, bool) {
	if !strings.HasPrefix(in.args, "[") {
		return nil, false
	}
	var argv []string
	if err := json.Unmarshal([]byte(in.args), &argv); err != nil {
		return nil, false
	}
	return argv, true
}

// stage is one FROM and the instructions up to the next.
type stage struct {
	from  instruction
	image string // the base image reference
	name  string // AS name, if any
	body  []instruction
}

var (
	errDockerSyntax = errors.New("dockerfile syntax")
	// heredocRE finds a heredoc (<<EOF), which this parser does not read.
	heredocRE = regexp.MustCompile(`<<-?["']?[A-Za-z_]+`)
)

// parseDockerfile splits a Dockerfile into stages. It reads what Tollgate's Dockerfile uses:
// comments, `\` continuations (comment lines inside one are dropped, as Docker does) and
// JSON exec forms; a heredoc or a changed escape character is an error, not a silent misread.
func parseDockerfile(src string) ([]stage, error) {
	var ins []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(trimmed, " ", "")), "#escape=") {
				return nil, fmt.Errorf("%w: line %d: escape directives are not supported", errDockerSyntax, i+1)
			}
			continue
		}
		if cur.Len() == 0 {
			if trimmed == "" {
				continue
			}
			start = i + 1
		}
		if body, ok := strings.CutSuffix(strings.TrimRight(line, " \t"), `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if heredocRE.MatchString(text) {
			return nil, fmt.Errorf("%w: line %d: heredocs are not supported", errDockerSyntax, start)
		}
		cmd, args, _ := strings.Cut(text, " ")
		ins = append(ins, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("%w: line %d: continuation at the end of the file", errDockerSyntax, start)
	}
	var stages []stage
	for _, in := range ins {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			var image, name string
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:] // --platform=...
			}
			switch {
			case len(f) == 1:
				image = f[0]
			case len(f) == 3 && strings.EqualFold(f[1], "AS"):
				image, name = f[0], f[2]
			default:
				return nil, fmt.Errorf("%w: line %d: FROM %s", errDockerSyntax, in.line, in.args)
			}
			stages = append(stages, stage{from: in, image: image, name: name})
			continue
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				continue // global build arguments
			}
			return nil, fmt.Errorf("%w: line %d: %s before the first FROM", errDockerSyntax, in.line, in.cmd)
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("%w: no FROM", errDockerSyntax)
	}
	return stages, nil
}

// keyValues reads ENV or ARG arguments: `K=V K2="V 2"` or the legacy `K V`.
func keyValues(args string) (map[string]string, error) {
	words, err := shellWords(args)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	if len(words) >= 2 && !strings.Contains(words[0], "=") {
		out[words[0]] = strings.Join(words[1:], " ")
		return out, nil
	}
	for _, w := range words {
		k, v, _ := strings.Cut(w, "=")
		out[k] = v
	}
	return out, nil
}

// shellWords splits a POSIX shell command into words: single and double quotes, backslash
// escapes; `$NAME` and `${NAME}` are kept as written (expand does that). Operators other than
// whitespace are not special here: callers cut at `&&` first.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("%w: unterminated ' in %q", errDockerSyntax, s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.ContainsRune(`"\$`+"`", rune(s[i+1])) {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("%w: unterminated \" in %q", errDockerSyntax, s)
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

var varRE = regexp.MustCompile(`\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))`)

// expand replaces $NAME and ${NAME} with vars[NAME]; an unknown name is an error, so the
// test never builds with a variable it did not set on purpose.
func expand(s string, vars map[string]string) (string, error) {
	var missing []string
	out := varRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := varRE.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unset variables %v in %q", missing, s)
	}
	return out, nil
}

// versionLess compares dotted numeric versions given as parts ("" counts as 0).
func versionLess(a, b []string) bool {
	for i := range max(len(a), len(b)) {
		var x, y int
		if i < len(a) {
			fmt.Sscan(a[i], &x)
		}
		if i < len(b) {
			fmt.Sscan(b[i], &y)
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func TestParseDockerfile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     string
		want    []string // per stage: image, then "CMD args" per instruction
		wantErr string
	}{
		{name: "continuations and comments", src: "ARG X=1\nFROM a@sha256:x AS b\n# c\nRUN one \\\n  # dropped\n  two\nUSER 1:1\n",
			want: []string{"a@sha256:x", "RUN one    two", "USER 1:1"}},
		{name: "platform flag", src: "FROM --platform=$BUILDPLATFORM img AS b\n", want: []string{"img"}},
		{name: "heredoc", src: "FROM a\nRUN <<EOF\nx\nEOF\n", wantErr: "heredocs"},
		{name: "escape directive", src: "# escape=`\nFROM a\n", wantErr: "escape"},
		{name: "no FROM", src: "RUN x\n", wantErr: "before the first FROM"},
		{name: "empty", src: "# nothing\n", wantErr: "no FROM"},
		{name: "dangling continuation", src: "FROM a\nRUN x \\", wantErr: "continuation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stages, err := parseDockerfile(tc.src)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, errDockerSyntax)
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			var got []string
			for _, s := range stages {
				got = append(got, s.image)
				for _, in := range s.body {
					got = append(got, in.cmd+" "+in.args)
				}
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestShellWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{in: `go build -ldflags="-s -w -X main.version=$VERSION" -o /out/x`, want: []string{"go", "build", "-ldflags=-s -w -X main.version=$VERSION", "-o", "/out/x"}},
		{in: `GOOS="$TARGETOS" a 'b c' d\ e`, want: []string{"GOOS=$TARGETOS", "a", "b c", "d e"}},
		{in: `"esc \" \$ \x"`, want: []string{`esc " $ \x`}},
		{in: `a "b`, err: true},
		{in: `a 'b`, err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := shellWords(tc.in)
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
