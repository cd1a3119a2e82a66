package engine

// WaitReady exposes waitReady to the integration tests.
var WaitReady = waitReady
