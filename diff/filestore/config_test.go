package filestore

import (
	"errors"
	"io"
	"path/filepath"
	"testing"

	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/schema/config"
)

func TestConfigOpensTheChosenStore(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.Driver != DriverFile || c.Path != DefaultPath {
		t.Errorf("defaults: %+v", c)
	}
	m := Config{Driver: DriverMemory}
	m.SetDefaults()
	if m.Path != "" {
		t.Errorf("a memory store got a path: %+v", m)
	}
	st, err := m.Open(zap.NewNop())
	if _, ok := st.(*diff.MemoryStore); err != nil || !ok {
		t.Fatalf("memory: %T, %v", st, err)
	}
	f := Config{Driver: DriverFile, Path: filepath.Join(t.TempDir(), "state")}
	st, err = f.Open(zap.NewNop())
	if _, ok := st.(*Store); err != nil || !ok {
		t.Fatalf("file: %T, %v", st, err)
	}
	st.(io.Closer).Close()
	var fe *config.FieldError
	if err := (Config{Driver: "redis"}).Validate(); !errors.As(err, &fe) || fe.Path != "driver" {
		t.Errorf("bad driver: %v", err)
	}
}
