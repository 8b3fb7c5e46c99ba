// Package config holds what every package's configuration shares: the
// typed error that names the YAML key at fault, and the Secret type that
// never prints.
//
// Each package owns its own configuration struct (its YAML keys, defaults
// and checks); cmd/rollcall decodes the file into them and prefixes each
// FieldError with where the block sits ("sinks[1]" + "compression").
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// FieldError is an invalid configuration value. Path is the YAML key
// relative to the block that was validated ("sasl.mechanism", "url[1]"),
// empty when no single key is at fault.
type FieldError struct {
	Path string
	Msg  string
}

// Errorf returns a FieldError for path.
func Errorf(path, format string, args ...any) *FieldError {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Join appends path to prefix: "sinks[1]" + "compression" is
// "sinks[1].compression", "brokers" + "[0]" is "brokers[0]".
func Join(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	case strings.HasPrefix(path, "["):
		return prefix + path
	}
	return prefix + "." + path
}

// Prefix places err under prefix. It keeps the first FieldError in err
// (a Validate that joins several reports the first); any other error is
// taken whole as the message for prefix. Nil stays nil.
func Prefix(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return &FieldError{Path: Join(prefix, fe.Path), Msg: fe.Msg}
	}
	return &FieldError{Path: prefix, Msg: err.Error()}
}

// First returns the first error of a joined one (errors.Join), or err
// itself: a configuration reports one problem at a time.
func First(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 0 {
		return j.Unwrap()[0]
	}
	return err
}

// Secret is a string that never prints: logs, errors and dumps of the
// config show "<secret>".
type Secret string

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<secret>"
}

// GoString implements fmt.GoStringer, so %#v redacts too.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// MarshalYAML redacts the secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// ReadSecretFile reads a mounted secret, trimming the trailing newline
// that editors and `echo` add. The error names the file, never the content.
func ReadSecretFile(path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		return "", fmt.Errorf("%s is empty", path)
	}
	return Secret(b), nil
}

// ResolveSecret fills *s from file when file is set; both set is an error.
// key is the secret's path ("sasl.password"); its file variant is
// key+"_file".
func ResolveSecret(s *Secret, file, key string) error {
	if file == "" {
		return nil
	}
	if *s != "" {
		name := key[strings.LastIndex(key, ".")+1:]
		return Errorf(key, "set %s or %s_file, not both", name, name)
	}
	v, err := ReadSecretFile(file)
	if err != nil {
		return Errorf(key+"_file", "%v", err)
	}
	*s = v
	return nil
}

// StringList accepts a YAML list or a single string.
type StringList []string

// UnmarshalYAML implements yaml.Unmarshaler.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = StringList{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}
