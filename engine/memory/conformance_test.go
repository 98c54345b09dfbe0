package memory

import (
	"testing"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/engine/enginetest"
)

func TestConformance(t *testing.T) {
	enginetest.Run(t, enginetest.Factory{
		Open: func(t *testing.T, dir string) engine.Engine {
			db, err := Open(dir)
			if err != nil {
				t.Fatalf("memory.Open(%q): %v", dir, err)
			}
			return db
		},
	})
}
