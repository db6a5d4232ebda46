package replicas

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// View is one read of the registry: the live replicas, this one included
// once it has joined.
type View struct {
	Self Info
	Live []Info
	Read time.Time     // when it was read; zero before the first read
	Err  error         // the last read or heartbeat failed
	TTL  time.Duration // how old a heartbeat, or this view, may be
}

// Fresh reports whether the view is recent enough (read within TTL, no
// error since) to decide on: a replica that cannot read the registry must
// not conclude that no one serves a pipeline.
func (v View) Fresh(now time.Time) bool {
	return v.Err == nil && !v.Read.IsZero() && now.Sub(v.Read) <= v.TTL
}

// Serves reports whether this replica or a live one serves pipeline.
func (v View) Serves(pipeline string) bool {
	if slices.Contains(v.Self.Pipelines, pipeline) {
		return true
	}
	for _, in := range v.Live {
		if slices.Contains(in.Pipelines, pipeline) {
			return true
		}
	}
	return false
}

// Foreign returns the live replicas of other deployments.
func (v View) Foreign() []Info {
	var out []Info
	for _, in := range v.Live {
		if in.Deployment != v.Self.Deployment {
			out = append(out, in)
		}
	}
	return out
}

// Yields reports whether this replica should stand back because a replica
// of another deployment was using the prefix first (it started earlier;
// ties go by instance name). The earlier deployment keeps working.
func (v View) Yields() bool {
	for _, in := range v.Foreign() {
		if in.Started.Before(v.Self.Started) || (in.Started.Equal(v.Self.Started) && in.Instance < v.Self.Instance) {
			return true
		}
	}
	return false
}

// Configs counts the different version and config combinations among the
// live replicas: 1 when they agree (0 before the first read).
func (v View) Configs() int {
	seen := map[string]bool{}
	for _, in := range v.Live {
		seen[in.Version+" "+in.Config] = true
	}
	return len(seen)
}

// Disagreement describes how the live replicas differ, or is "" when they
// all run one version and one config of one deployment. Replicas that run
// the same are grouped: "a, b: version 1.4.0, config 1f2e3d4c5b6a; c:
// version 1.5.0, config 9a8b7c6d5e4f".
func (v View) Disagreement() string {
	type group struct {
		key   string
		names []string
	}
	var groups []*group
	foreign := len(v.Foreign()) > 0
	for _, in := range v.Live {
		key := fmt.Sprintf("version %s, config %s", in.Version, in.Config)
		if foreign {
			key = fmt.Sprintf("deployment %q, %s", in.Deployment, key)
		}
		i := slices.IndexFunc(groups, func(g *group) bool { return g.key == key })
		if i < 0 {
			groups = append(groups, &group{key: key})
			i = len(groups) - 1
		}
		groups[i].names = append(groups[i].names, in.Instance)
	}
	if len(groups) <= 1 {
		return ""
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = strings.Join(g.names, ", ") + ": " + g.key
	}
	return strings.Join(parts, "; ")
}
