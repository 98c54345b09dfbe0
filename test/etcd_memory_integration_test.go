package test

import "testing"

// 3-member clusters on the memory engine: operations and cross-member
// visibility. The scenarios are shared with the other engine's twin
// (cluster_scenarios_test.go).

func TestEtcdMemoryIntegration_SingleNodeOperations(t *testing.T) {
	t.Parallel()
	scenarioSingleNodeOperations(t, engineMemory)
}

func TestEtcdMemoryIntegration_WriteOneReadAll(t *testing.T) {
	t.Parallel()
	scenarioWriteOneReadAll(t, engineMemory)
}

func TestEtcdMemoryIntegration_ConcurrentWritesAllMembers(t *testing.T) {
	t.Parallel()
	scenarioConcurrentWritesAllMembers(t, engineMemory)
}

func TestEtcdMemoryIntegration_UpdatesFromEachMember(t *testing.T) {
	t.Parallel()
	scenarioUpdatesFromEachMember(t, engineMemory)
}
