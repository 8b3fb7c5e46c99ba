package config

import (
	"errors"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type inner struct {
	Limit int `yaml:"limit"`
}

type entry struct {
	Kind  string `yaml:"kind"`
	inner `yaml:",inline"`
}

type extra struct {
	Topic string `yaml:"topic"`
}

// KeyBlocks allows topic only in entries of kind "k".
func (*entry) KeyBlocks(n *yaml.Node) []any {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "kind" && n.Content[i+1].Value == "k" {
			return []any{&extra{}}
		}
	}
	return nil
}

type doc struct {
	Wait    time.Duration `yaml:"wait"`
	Entries []entry       `yaml:"entries"`
}

func TestDecode(t *testing.T) {
	env := func(k string) (string, bool) { return map[string]string{"N": "3"}[k], k == "N" }
	var d doc
	if err := Decode([]byte("wait: 1s\nentries:\n  - kind: k\n    limit: ${N}\n    topic: x\n"), &d, env); err != nil || d.Entries[0].Limit != 3 {
		t.Fatalf("Decode = %v, %+v", err, d)
	}
	for in, want := range map[string]string{
		"":                                  "the file is empty",
		"- a":                               "the top level must be a mapping",
		"wait: [1]":                         "wait: expected a single value, got a list",
		"Wait: 1s":                          `Wait: unknown key (did you mean "wait"?)`,
		"entries: [{kind: j, topic: x}]":    "entries[0].topic: unknown key",
		"entries: [{kind: k, kind: k}]":     "entries[0].kind: duplicate key",
		"entries:\n  - limit: ${NOPE}":      "entries[0].limit: environment variable NOPE is not set",
		"wait: soon":                        "wait: cannot unmarshal !!str `soon` into time.Duration",
		"wait: &a 1s\nentries: *a":          "entries: YAML aliases are not supported",
		"entries: [{kind: k, limit: many}]": "entries[0].limit: cannot unmarshal !!str `many` into int",
	} {
		var d doc
		err := Decode([]byte(in), &d, env)
		var fe *FieldError
		if !errors.As(err, &fe) || err.Error() != want {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
