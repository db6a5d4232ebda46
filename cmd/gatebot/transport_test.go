package main

import (
	"net/http"
	"testing"
)

// TestOutboundTransportKeepsConnections: replies to the one Connector host
// must reuse connections (Go's default keeps 2 idle per host, and every
// other reply dialled anew), and the clone keeps the default's proxy and
// timeouts.
func TestOutboundTransportKeepsConnections(t *testing.T) {
	t.Parallel()
	tr := outboundTransport()
	def := http.DefaultTransport.(*http.Transport)
	if tr.MaxIdleConnsPerHost < 64 || tr.MaxIdleConns < tr.MaxIdleConnsPerHost {
		t.Fatalf("idle connections: %d per host, %d in all", tr.MaxIdleConnsPerHost, tr.MaxIdleConns)
	}
	if tr == def || tr.Proxy == nil || tr.IdleConnTimeout != def.IdleConnTimeout || tr.TLSHandshakeTimeout != def.TLSHandshakeTimeout {
		t.Fatal("outboundTransport must be a clone of the default transport")
	}
}
