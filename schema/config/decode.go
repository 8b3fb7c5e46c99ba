package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Blocks is implemented by a struct (on its pointer) whose allowed keys
// depend on the mapping it decodes from, such as a sink entry whose type
// picks its block. KeyBlocks returns the structs whose keys are allowed
// besides the struct's own yaml-tagged fields.
type Blocks interface {
	KeyBlocks(n *yaml.Node) []any
}

// Decode decodes the YAML document b into v, a pointer to a struct,
// strictly: every mapping key must be a yaml-tagged field (",inline"
// fields count as their own), given once, and no alias is used. ${VAR} in
// scalars is replaced from lookupEnv before decoding. Every error is a
// *FieldError naming the key at fault, or none for a problem with the
// whole document.
func Decode(b []byte, v any, lookupEnv func(string) (string, bool)) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return &FieldError{Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return &FieldError{Msg: "the file is empty"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return &FieldError{Msg: "the top level must be a mapping"}
	}
	w := walker{env: lookupEnv, lines: map[int]string{}}
	if err := w.walk(root, "", reflect.TypeOf(v)); err != nil {
		return err
	}
	if err := root.Decode(v); err != nil {
		return w.decodeError(err)
	}
	return nil
}

// DecodeInto decodes the mapping n into each of vs, as parts of one
// value: yaml type errors come back together, in document order, as one
// decode reports them.
func DecodeInto(n *yaml.Node, vs ...any) error {
	var errs []string
	for _, v := range vs {
		err := n.Decode(v)
		var te *yaml.TypeError
		if errors.As(err, &te) {
			errs = append(errs, te.Errors...)
		} else if err != nil {
			return err
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool { return errLine(errs[i]) < errLine(errs[j]) })
	return &yaml.TypeError{Errors: errs}
}

type walker struct {
	env func(string) (string, bool)
	// lines records which key sits on which line, to name the key of a
	// yaml type error.
	lines map[int]string
}

var (
	lineRE = regexp.MustCompile(`line (\d+): (.*)`)
	envRE  = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
)

// errLine is the line number a yaml type error starts with, 0 if none.
func errLine(msg string) int {
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// decodeError turns yaml's "line N: cannot unmarshal ..." into an error
// naming the key on that line.
func (w *walker) decodeError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		if m := lineRE.FindStringSubmatch(te.Errors[0]); m != nil {
			line, _ := strconv.Atoi(m[1])
			if key, ok := w.lines[line]; ok {
				return Errorf(key, "%s", m[2])
			}
		}
		return &FieldError{Msg: te.Errors[0]}
	}
	return &FieldError{Msg: err.Error()}
}

var blocksType = reflect.TypeFor[Blocks]()

// walk checks every mapping key against the struct it decodes into,
// expands ${VAR} in scalar values, and records the keys' lines.
func (w *walker) walk(n *yaml.Node, path string, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if path != "" {
			w.lines[n.Line] = path
		}
		return w.expand(n, path)
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice {
			if t.Kind() == reflect.Struct || t.Kind() == reflect.Map {
				return Errorf(path, "expected a mapping, got a list")
			}
			return Errorf(path, "expected a single value, got a list")
		}
		for i, c := range n.Content {
			if err := w.walk(c, fmt.Sprintf("%s[%d]", path, i), t.Elem()); err != nil {
				return err
			}
		}
		return nil
	case yaml.MappingNode:
		if t.Kind() != reflect.Struct {
			return Errorf(path, "expected a single value, got a mapping")
		}
		allowed := fieldTypes(t)
		if reflect.PointerTo(t).Implements(blocksType) {
			for _, b := range reflect.New(t).Interface().(Blocks).KeyBlocks(n) {
				for k, ft := range fieldTypes(reflect.TypeOf(b).Elem()) {
					allowed[k] = ft
				}
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := k.Value
			if path != "" {
				key = path + "." + k.Value // not Join: a key may start with "["
			}
			w.lines[k.Line] = key
			if seen[k.Value] {
				return Errorf(key, "duplicate key")
			}
			seen[k.Value] = true
			ft, ok := allowed[k.Value]
			if !ok {
				return Errorf(key, "unknown key%s", suggest(k.Value, allowed))
			}
			if err := w.walk(v, key, ft); err != nil {
				return err
			}
		}
		return nil
	case yaml.AliasNode:
		return Errorf(path, "YAML aliases are not supported")
	}
	return nil
}

// expand replaces ${VAR} in a scalar.
func (w *walker) expand(n *yaml.Node, path string) error {
	var missing string
	orig := n.Value
	n.Value = envRE.ReplaceAllStringFunc(n.Value, func(s string) string {
		name := envRE.FindStringSubmatch(s)[1]
		v, ok := w.env(name)
		if !ok && missing == "" {
			missing = name
		}
		return v
	})
	if missing != "" {
		return Errorf(path, "environment variable %s is not set", missing)
	}
	// The parser tagged the plain scalar "${RATE}" as a string; drop that
	// tag so the expanded "200" resolves as a number again.
	if n.Value != orig && n.Style == 0 {
		n.Tag = ""
	}
	return nil
}

// fieldTypes maps the YAML keys of struct t to their types, flattening
// ",inline" fields.
func fieldTypes(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case opts == "inline":
			for k, ft := range fieldTypes(f.Type) {
				m[k] = ft
			}
		case name != "" && name != "-":
			m[name] = f.Type
		}
	}
	return m
}

// suggest is " (did you mean ...)" when k is an allowed key spelt with
// other case, dashes or underscores.
func suggest(k string, allowed map[string]reflect.Type) string {
	norm := strings.ReplaceAll(strings.ReplaceAll(k, "_", ""), "-", "")
	for a := range allowed {
		if strings.EqualFold(strings.ReplaceAll(a, "_", ""), norm) {
			return fmt.Sprintf(" (did you mean %q?)", a)
		}
	}
	return ""
}
