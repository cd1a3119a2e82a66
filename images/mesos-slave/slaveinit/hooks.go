package slaveinit

import (
	"fmt"
	"net"
	"os"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/internal/shellenv"
)

// RealHooks reach the real system.
func RealHooks() Hooks {
	return Hooks{SourceInit: shellenv.Source, FirstIPv4: FirstIPv4, Exists: func(p string) bool {
		_, err := os.Stat(p)
		return err == nil
	}}
}

// FirstIPv4 returns the first IPv4 address of an interface (the seed used
// eth0 for MESOS_HOSTNAME in the local preset).
func FirstIPv4(name string) (string, error) {
	iface, err := net.InterfaceByName(name)
	if err != nil {
		return "", err
	}
	addrs, err := iface.Addrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String(), nil
		}
	}
	return "", fmt.Errorf("%s has no IPv4 address", name)
}
