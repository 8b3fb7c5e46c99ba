// Package schema is rollcall's event contract and the data shared by its
// subsystems: members and snapshots as the poller sees them, and the
// CloudEvents 1.0 events the diff engine emits and the sinks publish.
//
// It is the leaf package: poller, diff and sink import it and never each
// other. Changing anything that reaches the wire (JSON field names, event
// types, reasons, the id derivation) breaks consumers; the golden files in
// testdata/ and the embedded JSON Schemas exist to make such a change loud.
package schema
