package marathontest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// event is one server-sent event: its type and JSON payload.
type event struct{ kind, data string }

// events is GET /v2/events (reference §1.10): server-sent events for a
// client that accepts text/event-stream (405 otherwise), opened by an
// event_stream_attached event; the stream never closes by itself.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "events need Accept: text/event-stream"})
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		return
	}
	ch := make(chan event, 256)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if _, ok := s.subs[ch]; ok {
			delete(s.subs, ch)
			close(ch)
		}
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	attached, _ := json.Marshal(map[string]any{"eventType": "event_stream_attached", "remoteAddress": r.RemoteAddr, "timestamp": stamp(time.Now())})
	fmt.Fprintf(w, "event: event_stream_attached\ndata: %s\n\n", attached)
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case e, ok := <-ch:
			if !ok {
				return
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.kind, e.data)
			fl.Flush()
		}
	}
}

// emitLocked sends an event to every stream. Called with s.mu held.
func (s *Server) emitLocked(kind string, payload map[string]any) {
	payload["eventType"] = kind
	payload["timestamp"] = stamp(time.Now())
	b, _ := json.Marshal(payload)
	for ch := range s.subs {
		select {
		case ch <- event{kind, string(b)}:
		default:
			// Marathon disconnects a consumer that falls behind
			// (event_stream_max_outstanding_messages, reference §1.10)
			// rather than skipping events silently.
			delete(s.subs, ch)
			close(ch)
		}
	}
}

// statusLocked emits a task's status_update_event (reference §1.10:
// taskId, taskStatus, appId, host, ports, version).
func (s *Server) statusLocked(appID string, t *task, status string) {
	s.emitLocked("status_update_event", map[string]any{"appId": appID, "taskId": t.id, "instanceId": instanceID(t.id), "taskStatus": status,
		"host": t.host, "ports": append([]int{}, t.ports...), "version": t.version, "slaveId": "agent-S0", "message": "", "ipAddresses": []any{}})
}

// healthLocked emits a task's health_status_changed_event (reference
// §1.10: appId, instanceId, version, alive).
func (s *Server) healthLocked(appID string, t *task) {
	s.emitLocked("health_status_changed_event", map[string]any{"appId": appID, "instanceId": instanceID(t.id), "version": t.version, "alive": t.healthy})
}

// DropEventStreams closes every open event stream, as a Marathon restart
// or a lost connection does.
func (s *Server) DropEventStreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		delete(s.subs, ch)
		close(ch)
	}
}
