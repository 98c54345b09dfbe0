package test

import "testing"

// 3 members on the RocksDB engine: identical data, ranges, txns and
// revisions everywhere. The scenarios are shared with the other engine's
// twin (consistency_scenarios_test.go).

func TestEtcdRocksDBConsistency_DataIdenticalAfterWrites(t *testing.T) {
	scenarioDataIdenticalAfterWrites(t, engineRocksDB)
}

func TestEtcdRocksDBConsistency_SequentialWrites(t *testing.T) {
	scenarioSequentialWrites(t, engineRocksDB)
}

func TestEtcdRocksDBConsistency_RangesIdentical(t *testing.T) {
	scenarioRangesIdentical(t, engineRocksDB)
}

func TestEtcdRocksDBConsistency_Deletes(t *testing.T) {
	scenarioDeletes(t, engineRocksDB)
}

func TestEtcdRocksDBConsistency_TxnResults(t *testing.T) {
	scenarioTxnResults(t, engineRocksDB)
}

func TestEtcdRocksDBConsistency_ConcurrentMixedOps(t *testing.T) {
	scenarioConcurrentMixedOps(t, engineRocksDB)
}

func TestEtcdRocksDBConsistency_RevisionsIdentical(t *testing.T) {
	scenarioRevisionsIdentical(t, engineRocksDB)
}
