package cards

import "testing"

func TestRestatesState(t *testing.T) {
	t.Parallel()
	cases := []struct {
		detail, state string
		want          bool
	}{
		{"simulated: succeeded (7s)", "succeeded", true},
		{"jenkins: SUCCESS", "succeeded", true},
		{"in_progress", "running", true},
		{"github: completed", "succeeded", true},
		{"deployed 1.4.2 to prod", "succeeded", false},
		{"waiting for an approval step", "queued", false},
		{"failed at stage 'migrate'", "failed", false},
		{"succeeded", "failed", false},
	}
	for _, c := range cases {
		if got := restatesState(c.detail, c.state); got != c.want {
			t.Errorf("restatesState(%q, %q) = %v, want %v", c.detail, c.state, got, c.want)
		}
	}
}
