package marathontest

import (
	"encoding/json"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/app"
)

// The client side: what tests read back from the stand-in, typed as the
// project reads apps (marathon/app). Nothing the server does depends on it.

// Definition is app id as GET /v2/apps/{id}?embed=app.tasks answers it,
// typed (its Doc as a client decodes the answer); nil when the app does
// not exist.
func (s *Server) Definition(id string) *app.Definition {
	doc := s.App(id)
	if doc == nil {
		return nil
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic("marathontest: " + err.Error())
	}
	d, err := app.Parse(b)
	if err != nil {
		panic("marathontest: the stand-in's own answer does not parse as an app: " + err.Error())
	}
	return d
}
