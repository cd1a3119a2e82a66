package dipstest

import "github.com/lhcbdirac/lhcbdirac-pipeline/dips/pki"

// The test CA lives in dips/pki, which product code (the smoke kit) uses
// too; these names keep the tests' spelling.
type (
	PKI     = pki.PKI
	KeyPair = pki.KeyPair
)

var (
	NewPKI      = pki.NewPKI
	Proxy       = pki.Proxy
	SubjectHash = pki.SubjectHash
)
