package test

import "testing"

// 3 members on the memory engine: identical data, ranges, txns and
// revisions everywhere. The scenarios are shared with the other engine's
// twin (consistency_scenarios_test.go).

func TestEtcdMemoryConsistency_DataIdenticalAfterWrites(t *testing.T) {
	scenarioDataIdenticalAfterWrites(t, engineMemory)
}

func TestEtcdMemoryConsistency_SequentialWrites(t *testing.T) {
	scenarioSequentialWrites(t, engineMemory)
}

func TestEtcdMemoryConsistency_RangesIdentical(t *testing.T) {
	scenarioRangesIdentical(t, engineMemory)
}

func TestEtcdMemoryConsistency_Deletes(t *testing.T) {
	scenarioDeletes(t, engineMemory)
}

func TestEtcdMemoryConsistency_TxnResults(t *testing.T) {
	scenarioTxnResults(t, engineMemory)
}

func TestEtcdMemoryConsistency_ConcurrentMixedOps(t *testing.T) {
	scenarioConcurrentMixedOps(t, engineMemory)
}

func TestEtcdMemoryConsistency_RevisionsIdentical(t *testing.T) {
	scenarioRevisionsIdentical(t, engineMemory)
}
