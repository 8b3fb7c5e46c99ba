package diff

import (
	"errors"
	"testing"

	"github.com/rollcall-dev/rollcall/schema/config"
)

func TestBaselineConfig(t *testing.T) {
	var c BaselineConfig
	c.SetDefaults()
	if BaselineMode(c.Baseline) != BaselineEmit || c.Validate() != nil {
		t.Errorf("default baseline %q", c.Baseline)
	}
	c.Baseline = "loud"
	var fe *config.FieldError
	if err := c.Validate(); !errors.As(err, &fe) || err.Error() != `baseline: must be emit or silent, got "loud"` {
		t.Errorf("bad baseline: %v", err)
	}
}
