package loadgen

import "testing"

// TestHTTP2Driver: sign over HTTP/2 only (the driver's transports speak
// nothing else, so a server without h2c would fail every request), every
// signature counted by the server.
func TestHTTP2Driver(t *testing.T) {
	s := startServer(t)
	r := run(t, s, Config{Op: "sign", Driver: DriverHTTP2, Conns: 2})
	checkClean(t, r)
	if got := s.opsTotal(t, "sign", "ed25519"); got != r.Items {
		t.Errorf("server counted %d signatures, engine %d", got, r.Items)
	}
	if r.Driver != DriverHTTP2 {
		t.Errorf("driver %q", r.Driver)
	}
}

// TestClientDriver: sign and verify through the client package; the server
// counted every signature the engine did, alone or in a batch.
func TestClientDriver(t *testing.T) {
	s := startServer(t)
	r := run(t, s, Config{Mix: []OpWeight{{Op: "sign", Weight: 1}, {Op: "verify", Weight: 1}}, Driver: DriverClient})
	checkClean(t, r)
	signed := s.opsTotal(t, "sign", "ed25519") + s.opsTotal(t, "sign_batch", "ed25519")
	// Prepare signed one verify fixture.
	if want := r.PerOp["sign"].Items + 1; signed != want {
		t.Errorf("server counted %d signatures, engine %d and one fixture", signed, want-1)
	}
	if _, err := Prepare(t.Context(), s.target(t), Config{Op: "wrap", Driver: DriverClient}); err == nil {
		t.Error("the client driver took wrap")
	}
	if _, err := Prepare(t.Context(), s.target(t), Config{Op: "sign", Conns: 2}); err == nil {
		t.Error("connections without the http2 driver")
	}
}
