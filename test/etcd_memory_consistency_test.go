package test

import "testing"

// 3 members on the memory engine: identical data, ranges, txns and
// revisions everywhere. The scenarios are shared with the other engine's
// twin (consistency_scenarios_test.go).

func TestEtcdMemoryConsistency_DataIdenticalAfterWrites(t *testing.T) {
	t.Parallel()
	scenarioDataIdenticalAfterWrites(t, engineMemory)
}

func TestEtcdMemoryConsistency_SequentialWrites(t *testing.T) {
	t.Parallel()
	scenarioSequentialWrites(t, engineMemory)
}

func TestEtcdMemoryConsistency_RangesIdentical(t *testing.T) {
	t.Parallel()
	scenarioRangesIdentical(t, engineMemory)
}

func TestEtcdMemoryConsistency_Deletes(t *testing.T) {
	t.Parallel()
	scenarioDeletes(t, engineMemory)
}

func TestEtcdMemoryConsistency_TxnResults(t *testing.T) {
	t.Parallel()
	scenarioTxnResults(t, engineMemory)
}

func TestEtcdMemoryConsistency_ConcurrentMixedOps(t *testing.T) {
	t.Parallel()
	scenarioConcurrentMixedOps(t, engineMemory)
}

func TestEtcdMemoryConsistency_RevisionsIdentical(t *testing.T) {
	t.Parallel()
	scenarioRevisionsIdentical(t, engineMemory)
}
