package rocksdb

import (
	"testing"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/engine/enginetest"
)

func TestConformance(t *testing.T) {
	enginetest.Run(t, enginetest.Factory{
		Open: func(t *testing.T, dir string) engine.Engine {
			db, err := Open(dir, testConfig())
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
		Durable: true,
	})
}
