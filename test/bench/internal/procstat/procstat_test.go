package procstat

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	// Fields 14/15 (utime/stime) = 250/50 ticks, field 24 (rss) = 1000 pages.
	const tail = " S 1 2 3 4 5 6 7 8 9 10 250 50 13 14 15 16 17 18 19 20 1000 22"
	tests := []struct {
		name    string
		stat    string
		want    Sample
		wantErr bool
	}{
		{"plain name", "42 (envoy)" + tail, Sample{CPU: 3 * time.Second, RSS: 4096000}, false},
		{"name with spaces and parentheses", "42 (a) b (c))" + tail, Sample{CPU: 3 * time.Second, RSS: 4096000}, false},
		{"truncated", "42 (envoy) S 1 2 3", Sample{}, true},
		{"no name", "42 envoy", Sample{}, true},
		{"not a number", "42 (envoy) S 1 2 3 4 5 6 7 8 9 10 x 50 13 14 15 16 17 18 19 20 1000 22", Sample{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.stat), 100, 4096)
			if tc.wantErr {
				require.ErrorIs(t, err, ErrFormat)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestReadSelf(t *testing.T) {
	s, err := Read(os.Getpid())
	require.NoError(t, err)
	require.Positive(t, s.RSS)
}

func TestParseLoadAvg(t *testing.T) {
	la, err := ParseLoadAvg([]byte("0.52 1.01 2.50 3/400 12345\n"))
	require.NoError(t, err)
	require.Equal(t, [3]float64{0.52, 1.01, 2.50}, la)
	_, err = ParseLoadAvg([]byte("0.5"))
	require.ErrorIs(t, err, ErrFormat)
}
