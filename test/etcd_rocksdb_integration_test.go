package test

import "testing"

// 3-member clusters on the RocksDB engine: operations and cross-member
// visibility. The scenarios are shared with the other engine's twin
// (cluster_scenarios_test.go).

func TestEtcdRocksDBIntegration_SingleNodeOperations(t *testing.T) {
	t.Parallel()
	scenarioSingleNodeOperations(t, engineRocksDB)
}

func TestEtcdRocksDBIntegration_WriteOneReadAll(t *testing.T) {
	t.Parallel()
	scenarioWriteOneReadAll(t, engineRocksDB)
}

func TestEtcdRocksDBIntegration_ConcurrentWritesAllMembers(t *testing.T) {
	t.Parallel()
	scenarioConcurrentWritesAllMembers(t, engineRocksDB)
}

func TestEtcdRocksDBIntegration_UpdatesFromEachMember(t *testing.T) {
	t.Parallel()
	scenarioUpdatesFromEachMember(t, engineRocksDB)
}
