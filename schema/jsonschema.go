package schema

import "embed"

// JSONSchemas holds the JSON Schema (draft 2020-12) of every event type,
// under jsonschema/: one file per type, named after it
// (rollcall.member.joined.json, ...), and event.json accepting any of them.
// Their $id values live under SchemaBaseURL.
//
//go:embed jsonschema/*.json
var JSONSchemas embed.FS

// SchemaBaseURL is the prefix of the schemas' $id.
const SchemaBaseURL = "https://rollcall.dev/schema/v1/"
