package metrics

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/httpbody"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
)

// Influx is where points go: InfluxDB 1.x's /write, with the seed's
// config keys (host, port, username, password, database, ssl). Host is a
// bare name or address once LoadInflux has read it: credentials given in a
// host URL are taken apart there, so no later message can show them.
type Influx struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username"`
	Password string `json:"password"`
	Database string `json:"database"`
	SSL      bool   `json:"ssl"`
}

// URL is the server's base URL (no credentials: they go in a header).
func (i Influx) URL() string {
	scheme := "http"
	if i.SSL {
		scheme = "https"
	}
	host, port := i.Host, i.Port
	if host == "" {
		host = "localhost"
	}
	if port == 0 {
		port = 8086
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// String is the URL, so that printing an Influx (%v, %+v) never shows its
// password.
func (i Influx) String() string { return i.URL() }

// Redact removes the credentials from text that may quote them (an error,
// a server's answer): the password as given and URL-escaped, the basic
// authentication token, and any echoed Authorization value.
func (i Influx) Redact(s string) string {
	if i.Username != "" || i.Password != "" {
		token := base64.StdEncoding.EncodeToString([]byte(i.Username + ":" + i.Password))
		s = strings.ReplaceAll(s, token, "***")
		s = strings.ReplaceAll(s, strings.TrimRight(token, "="), "***")
	}
	if i.Password != "" {
		for _, p := range []string{i.Password, url.QueryEscape(i.Password), url.PathEscape(i.Password)} {
			s = strings.ReplaceAll(s, p, "***")
		}
	}
	return redact.AuthValues(s)
}

// takeHostApart reads a host given as a URL — http(s)://[user:password@]
// name[:port][/], or name:port, or user:password@name — into its parts:
// the scheme sets SSL, the port Port, the user information the
// credentials (unless the separate keys give them; different ones are an
// error). from names where the host came from; errors never quote the
// credentials.
func (i *Influx) takeHostApart(from string) error {
	h := strings.TrimSpace(i.Host)
	if h == "" {
		return nil
	}
	if !strings.Contains(h, "://") && (strings.Contains(h, "@") || strings.Count(h, ":") == 1 || strings.HasPrefix(h, "[")) {
		h = "http://" + h
	}
	if !strings.Contains(h, "://") {
		i.Host = h // a bare name, or an IPv6 address without brackets
		return nil
	}
	u, err := url.Parse(h)
	if err != nil {
		return fmt.Errorf("%s %q: not a host name nor an http(s) URL", from, redact.URL(h))
	}
	shown := redact.URL(h)
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%s %q: the scheme must be http or https", from, shown)
	case u.Hostname() == "":
		return fmt.Errorf("%s %q: no host name", from, shown)
	case strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%s %q: a path or query is not supported (the collector writes to /write)", from, shown)
	}
	if u.User != nil {
		user := u.User.Username()
		pass, _ := u.User.Password()
		if (i.Username != "" && i.Username != user) || (i.Password != "" && i.Password != pass) {
			return fmt.Errorf("%s holds credentials and the username/password keys give others: keep one of them", from)
		}
		i.Username, i.Password = user, pass
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("%s %q: bad port", from, shown)
		}
		i.Port = n
	}
	i.SSL = u.Scheme == "https"
	i.Host = u.Hostname()
	return nil
}

// Writer posts line protocol to InfluxDB.
type Writer struct {
	Target Influx
	Client *http.Client
}

// Write posts one batch. Credentials travel as basic authentication (which
// InfluxDB 1.x accepts), so they appear in no URL and no error. An answer
// other than 204 is a *WriteError (or a transport error).
func (w *Writer) Write(ctx context.Context, body []byte) error {
	cl := w.Client
	if cl == nil {
		cl = &http.Client{Timeout: 30 * time.Second}
	}
	q := url.Values{"db": {w.Target.Database}, "precision": {"ns"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.Target.URL()+"/write?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("InfluxDB %s: %s", w.Target.URL(), w.Target.Redact(err.Error()))
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if w.Target.Username != "" || w.Target.Password != "" {
		req.SetBasicAuth(w.Target.Username, w.Target.Password)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return fmt.Errorf("InfluxDB %s: %s", w.Target.URL(), w.Target.Redact(err.Error()))
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusOK {
		return nil
	}
	return newWriteError(w.Target, resp)
}

// WriteError is InfluxDB's answer to a write it did not take whole.
type WriteError struct {
	Status  int
	Message string // InfluxDB's error: one line, bounded, without credentials
	Dropped int    // InfluxDB's count of points dropped ("dropped=N"); -1 when not given
	url     string
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("InfluxDB %s: %d %s: %s", e.url, e.Status, http.StatusText(e.Status), e.Message)
}

// Refused tells InfluxDB refused points of the batch — a partial write, a
// line it cannot parse, a field type conflict (400), a batch too large
// (413) — rather than being unable to take any point (an outage, bad
// credentials, a missing database: those keep the points for later).
func (e *WriteError) Refused() bool {
	if e.Status == http.StatusRequestEntityTooLarge {
		return true
	}
	if e.Status != http.StatusBadRequest {
		return false
	}
	for _, s := range []string{"partial write", "unable to parse", "field type conflict", "max key length", "beyond retention policy"} {
		if strings.Contains(e.Message, s) {
			return true
		}
	}
	return false
}

// Reason is the message without what varies from point to point (the
// quoted line, counts, sizes): one reason per kind of refusal, for logging
// each kind once.
func (e *WriteError) Reason() string {
	r := droppedCount.ReplaceAllString(e.Message, "")
	r = quotedLine.ReplaceAllString(r, "unable to parse …:")
	return strings.TrimSpace(digits.ReplaceAllString(r, "N"))
}

var (
	droppedN     = regexp.MustCompile(`dropped=(\d+)`)
	droppedCount = regexp.MustCompile(`\s*dropped=\d+`)
	quotedLine   = regexp.MustCompile(`unable to parse '.*':`)
	digits       = regexp.MustCompile(`\d+`)
)

// Bounds of what is read of an error answer: a refusal (400) quotes the
// lines InfluxDB could not parse, so its reason may come after a long line;
// anything else is quoted in brief.
const (
	refusalBodyMax = 1 << 20
	errorBodyMax   = 512
	messageMax     = 400
	quotedLineMax  = 120
)

func newWriteError(target Influx, resp *http.Response) *WriteError {
	e := &WriteError{Status: resp.StatusCode, Dropped: -1, url: target.URL()}
	limit := int64(errorBodyMax)
	if e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge {
		limit = refusalBodyMax
	}
	body, _ := httpbody.ReadAll(resp.Body, limit)
	msg := string(body)
	var j struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &j) == nil && j.Error != "" {
		msg = j.Error
	} else if h := resp.Header.Get("X-Influxdb-Error"); h != "" && strings.TrimSpace(msg) == "" {
		msg = h
	}
	msg = target.Redact(msg) // before any cut, which could leave part of a secret
	if m := droppedN.FindStringSubmatch(msg); m != nil {
		e.Dropped, _ = strconv.Atoi(m[1])
	}
	// InfluxDB quotes every line it could not parse, one a line: keep the
	// first, and of it the beginning.
	first, rest, _ := strings.Cut(msg, "\n")
	if i := strings.Index(first, "unable to parse '"); i >= 0 {
		if j := strings.LastIndex(first, "': "); j > i {
			line := first[i+len("unable to parse '") : j]
			first = first[:i] + "unable to parse '" + httpbody.Line(line, quotedLineMax) + first[j:]
		}
	}
	if more := strings.Count(rest, "unable to parse"); more > 0 {
		first += fmt.Sprintf(" (and %d more lines)", more)
	}
	e.Message = httpbody.Line(first, messageMax)
	return e
}
