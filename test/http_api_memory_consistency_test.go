package test

import "testing"

// HTTP writes on one memory member seen on all: one 3-member cluster, the
// scenarios of http_api_scenarios_test.go as subtests (each on its own keys).
func TestHTTPAPIMemoryConsistency_ThreeMembers(t *testing.T) {
	c := startCluster(t, engineMemory, 3)
	t.Run("MemberList", func(t *testing.T) { scenarioHTTPMemberList(t, c) })
	t.Run("WriteOneReadAll", func(t *testing.T) { scenarioHTTPWriteOneReadAll(t, c) })
	t.Run("WritesToEveryMember", func(t *testing.T) { scenarioHTTPWritesToEveryMember(t, c) })
	t.Run("ConcurrentWrites", func(t *testing.T) { scenarioHTTPConcurrentWrites(t, c) })
	t.Run("OneKeyFromEveryMember", func(t *testing.T) { scenarioHTTPOneKeyFromEveryMember(t, c) })
}
