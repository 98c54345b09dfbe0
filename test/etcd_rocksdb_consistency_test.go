package test

import "testing"

// 3 members on the RocksDB engine: identical data, ranges, txns and
// revisions everywhere. The scenarios are shared with the other engine's
// twin (consistency_scenarios_test.go).

func TestEtcdRocksDBConsistency_DataIdenticalAfterWrites(t *testing.T) {
	t.Parallel()
	scenarioDataIdenticalAfterWrites(t, engineRocksDB)
}

func TestEtcdRocksDBConsistency_SequentialWrites(t *testing.T) {
	t.Parallel()
	scenarioSequentialWrites(t, engineRocksDB)
}

func TestEtcdRocksDBConsistency_RangesIdentical(t *testing.T) {
	t.Parallel()
	scenarioRangesIdentical(t, engineRocksDB)
}

func TestEtcdRocksDBConsistency_Deletes(t *testing.T) {
	t.Parallel()
	scenarioDeletes(t, engineRocksDB)
}

func TestEtcdRocksDBConsistency_TxnResults(t *testing.T) {
	t.Parallel()
	scenarioTxnResults(t, engineRocksDB)
}

func TestEtcdRocksDBConsistency_ConcurrentMixedOps(t *testing.T) {
	t.Parallel()
	scenarioConcurrentMixedOps(t, engineRocksDB)
}

func TestEtcdRocksDBConsistency_RevisionsIdentical(t *testing.T) {
	t.Parallel()
	scenarioRevisionsIdentical(t, engineRocksDB)
}
