package catalog

import (
	"fmt"
	"io/fs"
	"regexp"
	"strings"
)

// DIRAC's HTTPS services run on Tornado 5.1 with DIRAC's patches
// (DIRACGrid/tornado, "5.1.1+dirac.1", as tornado_m2crypto's README says):
// TornadoServer calls tornado.iostream.SSLIOStream.configure(…) at import,
// which only the patched SSLIOStream (a Configurable) has. And Tornado
// 5.1's httputil subclasses collections.MutableMapping, which Python 3.10
// removed (DIRAC needs 3.11). Either one stops every HTTPS service before
// it listens. And tornado_m2crypto's M2IOStream wraps the server's socket
// itself (create_context_on_init): a TCPServer that wraps it with Python's
// ssl first, or an HTTPServerRequest that reads the certificate off that
// socket, fails every connection. The image patches PyPI's 5.1.1 to all of
// this (images/lhcbdirac/patches/tornado-5.1.1.patch).

var (
	sslIOStreamRE  = regexp.MustCompile(`(?m)^class SSLIOStream\(([^)]*)\):`)
	mutableMapping = regexp.MustCompile(`(?m)^class HTTPHeaders\(collections\.MutableMapping\)`)
)

// tornadoFiles are the files of site-packages tornadoProblem reads: the
// image's catalog exports them (SitePackagesFiles), and what is not
// exported reads as missing.
var tornadoFiles = []string{"tornado-*.dist-info/METADATA", "tornado/iostream.py", "tornado/tcpserver.py", "tornado/httputil.py"}

// tornadoProblem reads the installed tornado package; "" when DIRAC's
// HTTPS services can start on it.
func tornadoProblem(fsys fs.FS) string {
	version := ""
	if infos, _ := fs.Glob(fsys, "tornado-*.dist-info"); len(infos) == 1 {
		version = " " + distVersion(infos[0])
	}
	iostream, err := fs.ReadFile(fsys, "tornado/iostream.py")
	if err != nil {
		return "tornado is not installed (the [server] extra's tornado, with DIRAC's patches)"
	}
	var why []string
	if m := sslIOStreamRE.FindSubmatch(iostream); m == nil || !strings.Contains(string(m[1]), "Configurable") {
		why = append(why, "its SSLIOStream is not Configurable (TornadoServer calls SSLIOStream.configure: DIRAC's patched tornado, 5.1.1+dirac.1, is needed)")
	}
	if tcpserver, err := fs.ReadFile(fsys, "tornado/tcpserver.py"); err != nil || !strings.Contains(string(tcpserver), "create_context_on_init=True") {
		why = append(why, "its TCPServer does not leave the socket's wrapping to the stream (create_context_on_init), as tornado_m2crypto's M2IOStream needs")
	}
	httputil, err := fs.ReadFile(fsys, "tornado/httputil.py")
	if err == nil && mutableMapping.Match(httputil) {
		why = append(why, "its httputil subclasses collections.MutableMapping, which Python 3.10 removed")
	}
	if err != nil || !strings.Contains(string(httputil), "self.connection.stream.get_ssl_certificate(") {
		why = append(why, "its HTTPServerRequest does not ask the stream for the client's certificate (DIRAC reads it, and its chain, through M2IOStream)")
	}
	if len(why) == 0 {
		return ""
	}
	return fmt.Sprintf("the installed tornado%s cannot run DIRAC's HTTPS services: %s", version, strings.Join(why, "; "))
}
