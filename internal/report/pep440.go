package report

import (
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/python/pep440"
)

// CompareVersions orders two versions as PEP 440 does, through the
// project's one PEP 440 implementation (internal/python/pep440), spelling
// variants equal (1.0 == 1.0.0). A string that is not a PEP 440 version
// sorts before every version, and two of them compare as strings.
// Renderer.Compare takes any other with the same contract.
func CompareVersions(a, b string) int {
	va, errA := pep440.Parse(strings.TrimPrefix(strings.TrimSpace(a), "v"))
	vb, errB := pep440.Parse(strings.TrimPrefix(strings.TrimSpace(b), "v"))
	switch {
	case errA != nil && errB != nil:
		return strings.Compare(a, b)
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	return va.Compare(vb)
}
