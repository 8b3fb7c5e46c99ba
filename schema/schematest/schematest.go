// Package schematest validates encoded events against rollcall's embedded
// JSON Schemas. It is meant for tests: the sinks' conformance suite and
// end-to-end tests check that what reaches a destination is a valid event.
package schematest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/rollcall-dev/rollcall/schema"
)

var (
	once     sync.Once
	compiled *jsonschema.Schema
	errLoad  error
)

func load() (*jsonschema.Schema, error) {
	once.Do(func() {
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		files, err := fs.Glob(schema.JSONSchemas, "jsonschema/*.json")
		if err != nil {
			errLoad = err
			return
		}
		for _, f := range files {
			b, err := fs.ReadFile(schema.JSONSchemas, f)
			if err != nil {
				errLoad = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				errLoad = fmt.Errorf("%s: %w", f, err)
				return
			}
			if err := c.AddResource(schema.SchemaBaseURL+path.Base(f), doc); err != nil {
				errLoad = fmt.Errorf("%s: %w", f, err)
				return
			}
		}
		compiled, errLoad = c.Compile(schema.SchemaBaseURL + "event.json")
	})
	return compiled, errLoad
}

// ValidateJSON checks one encoded structured-mode event against the
// schema of its type.
func ValidateJSON(raw []byte) error {
	s, err := load()
	if err != nil {
		return fmt.Errorf("load schemas: %w", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.Validate(v)
}

// Validate fails t when raw is not a valid structured-mode event.
func Validate(t testing.TB, raw []byte) {
	t.Helper()
	if err := ValidateJSON(raw); err != nil {
		t.Errorf("event does not validate against the JSON Schema: %v\n%s", err, raw)
	}
}

// ValidateEvent marshals ev and validates the result.
func ValidateEvent(t testing.TB, ev schema.Event) {
	t.Helper()
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("marshal event: %v", err)
	}
	Validate(t, raw)
}
