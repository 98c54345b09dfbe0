package test

import "testing"

// The HTTP API end to end on one rocksdb member: REST, etcd's JSON gateway,
// the operations endpoints. Scenarios in http_api_scenarios_test.go.

func TestHTTPAPIRocksDBIntegration_PutGetDelete(t *testing.T) {
	scenarioHTTPPutGetDelete(t, engineRocksDB)
}

func TestHTTPAPIRocksDBIntegration_PrefixListing(t *testing.T) {
	scenarioHTTPPrefixListing(t, engineRocksDB)
}

func TestHTTPAPIRocksDBIntegration_CompareAndSwap(t *testing.T) {
	scenarioHTTPCompareAndSwap(t, engineRocksDB)
}

func TestHTTPAPIRocksDBIntegration_Operations(t *testing.T) { scenarioHTTPOps(t, engineRocksDB) }

func TestHTTPAPIRocksDBIntegration_EtcdGatewayDocExamples(t *testing.T) {
	scenarioEtcdGatewayDocExamples(t, engineRocksDB)
}

func TestHTTPAPIRocksDBIntegration_DocExamples(t *testing.T) {
	scenarioHTTPDocExamples(t, engineRocksDB)
}
