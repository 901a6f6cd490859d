package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRequestBody(t *testing.T) {
	tests := []struct {
		workload           string
		stream, withMarker bool
	}{{W1, false, false}, {W2, true, false}, {W3, false, true}}
	for _, tc := range tests {
		t.Run(tc.workload, func(t *testing.T) {
			b := requestBody(tc.workload, 4096)
			require.Len(t, b, 4096)
			var req struct {
				Model    string
				Stream   bool
				Messages []struct{ Role, Content string }
			}
			require.NoError(t, json.Unmarshal(b, &req))
			require.Equal(t, "gpt-4o-mini", req.Model)
			require.Equal(t, tc.stream, req.Stream)
			require.Equal(t, tc.withMarker, strings.Contains(string(b), Marker))
		})
	}
}

func TestParseGoroutines(t *testing.T) {
	exp := "# HELP go_goroutines Number of goroutines that currently exist.\n# TYPE go_goroutines gauge\ngo_goroutines 42\ngo_threads 9\n"
	require.EqualValues(t, 42, parseGoroutines(bufio.NewScanner(strings.NewReader(exp))))
	require.EqualValues(t, 0, parseGoroutines(bufio.NewScanner(strings.NewReader("go_threads 9\n"))))
}

func TestPlans(t *testing.T) {
	for name, p := range plans {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, name, p.name)
			require.Contains(t, p.w1Rates, 1000.0, "the targets are read at 1,000 req/s")
			require.Positive(t, p.w1Rounds)
			require.NotEmpty(t, p.w2Rates)
			require.Positive(t, p.w2Cadence)
		})
	}
}
