package manifest

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/dlclark/regexp2/v2"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaJSON is Microsoft's JSON schema for SchemaVersion, as shipped in
// the @microsoft/app-manifest npm package (MIT). It is kept in the repo so
// a package is checked offline, at build time, exactly as Teams' own
// tooling checks it; see schema/README.md for how to update it.
//
//go:embed schema/MicrosoftTeams.schema.1.29.json
var schemaJSON []byte

// ErrSchema is matched (errors.Is) by the error of CheckSchema when a
// manifest does not conform to the Teams schema. Options that pass
// Validate never produce one; it means gatebot built a bad manifest.
var ErrSchema = errors.New("manifest does not conform to the Teams app manifest schema")

// compileSchema compiles the embedded schema. It is compiled per use, not
// kept in a package variable: packages are built rarely, and this keeps
// the package free of global state.
func compileSchema() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("manifest: embedded schema: %w", err)
	}
	// The file says draft-04 but uses draft-06/07 keywords (const on
	// manifestVersion, if/then), which a draft-04 validator ignores. It
	// uses nothing that draft-07 reads differently (no exclusiveMinimum,
	// no schema "id"), so it is compiled as draft-07 and every rule in it
	// is enforced, as Teams' own validator does.
	if m, ok := doc.(map[string]any); ok {
		delete(m, "$schema")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	// Formats are asserted so a malformed URL is caught here, not in Teams.
	c.AssertFormat()
	// JSON-schema patterns are ECMA-262 regular expressions, and the
	// Teams schema uses lookahead, which Go's RE2 engine lacks.
	c.UseRegexpEngine(ecmaRegexp)
	if err := c.AddResource(SchemaURL, doc); err != nil {
		return nil, fmt.Errorf("manifest: embedded schema: %w", err)
	}
	sch, err := c.Compile(SchemaURL)
	if err != nil {
		return nil, fmt.Errorf("manifest: embedded schema: %w", err)
	}
	return sch, nil
}

// CheckSchema validates manifest.json bytes against the Teams app manifest
// schema of SchemaVersion. The error wraps ErrSchema and lists every
// violation with its JSON location.
func CheckSchema(manifestJSON []byte) error {
	sch, err := compileSchema()
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(manifestJSON))
	if err != nil {
		return fmt.Errorf("%w: not JSON: %w", ErrSchema, err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("%w: %w", ErrSchema, err)
	}
	return nil
}

// patternTimeout bounds one pattern match: ECMA-262 regular expressions
// backtrack.
const patternTimeout = 250 * time.Millisecond

// ecmaPattern is a schema pattern compiled with ECMAScript semantics.
type ecmaPattern struct{ re *regexp2.Regexp }

func (p ecmaPattern) MatchString(s string) bool {
	ok, err := p.re.MatchString(s)
	return err == nil && ok
}

func (p ecmaPattern) String() string { return p.re.String() }

func ecmaRegexp(s string) (jsonschema.Regexp, error) {
	re, err := regexp2.Compile(s, regexp2.ECMAScript)
	if err != nil {
		return nil, err
	}
	re.MatchTimeout = patternTimeout
	return ecmaPattern{re: re}, nil
}
