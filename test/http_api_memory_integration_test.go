package test

import "testing"

// The HTTP API end to end on one memory member: REST, etcd's JSON gateway,
// the operations endpoints. Scenarios in http_api_scenarios_test.go.

func TestHTTPAPIMemoryIntegration_PutGetDelete(t *testing.T) {
	scenarioHTTPPutGetDelete(t, engineMemory)
}

func TestHTTPAPIMemoryIntegration_PrefixListing(t *testing.T) {
	scenarioHTTPPrefixListing(t, engineMemory)
}

func TestHTTPAPIMemoryIntegration_CompareAndSwap(t *testing.T) {
	scenarioHTTPCompareAndSwap(t, engineMemory)
}

func TestHTTPAPIMemoryIntegration_Operations(t *testing.T) { scenarioHTTPOps(t, engineMemory) }

func TestHTTPAPIMemoryIntegration_EtcdGatewayDocExamples(t *testing.T) {
	scenarioEtcdGatewayDocExamples(t, engineMemory)
}

func TestHTTPAPIMemoryIntegration_DocExamples(t *testing.T) { scenarioHTTPDocExamples(t, engineMemory) }
