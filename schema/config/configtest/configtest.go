// Package configtest holds the table test config sections share: each
// change to a valid section must make Validate fail with a
// *config.FieldError whose text names the key.
package configtest

import (
	"errors"
	"testing"

	"github.com/rollcall-dev/rollcall/schema/config"
)

// Case changes a valid section so that Validate must fail with Want.
type Case[C any] struct {
	Name string
	Mod  func(*C)
	Want string
}

// Section is a pointer to a config section.
type Section[C any] interface {
	*C
	SetDefaults()
	Validate() error
}

// ValidateNamesTheKey runs each case as a subtest on a fresh valid()
// section: Mod, SetDefaults, then Validate must return a
// *config.FieldError whose text is Want.
func ValidateNamesTheKey[C any, P Section[C]](t *testing.T, valid func() C, cases []Case[C]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			c := valid()
			tc.Mod(&c)
			P(&c).SetDefaults()
			err := P(&c).Validate()
			var fe *config.FieldError
			if !errors.As(err, &fe) || err.Error() != tc.Want {
				t.Fatalf("Validate = %v, want the FieldError %q", err, tc.Want)
			}
		})
	}
}
