package store_test

import (
	"testing"

	"novanet/internal/store/pgtest"
)

func TestPostgres(t *testing.T) { runConformance(t, pgtest.Start) }
