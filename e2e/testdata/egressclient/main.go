// Command egressclient is the guest side of e2e's TestCredentialsEgress:
// a static HTTPS client put into a VM's image (busybox has no TLS). It
// dials -dial (an address, so no DNS is needed), says -name in its TLS
// ClientHello, verifies the server against the system roots (in a Linux
// guest, /etc/ssl/certs/ca-certificates.crt: where hangar adds its egress
// CA) unless -insecure, sends GET -path with
// "Authorization: Bearer $API_KEY" from its environment, and prints the
// status, the body and the certificate's issuer.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	dial := flag.String("dial", "", "address to connect to (IP:443)")
	name := flag.String("name", "", "server name (SNI, Host, verification)")
	path := flag.String("path", "/", "request path")
	insecure := flag.Bool("insecure", false, "do not verify the server's certificate")
	flag.Parse()
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: *name, InsecureSkipVerify: *insecure},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, *dial)
		},
	}
	c := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	req, err := http.NewRequest("GET", "https://"+*name+*path, nil)
	if err != nil {
		fail(err)
	}
	req.Header.Set("Authorization", "Bearer "+os.Getenv("API_KEY"))
	resp, err := c.Do(req)
	if err != nil {
		fail(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fail(err)
	}
	issuer := ""
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		issuer = resp.TLS.PeerCertificates[0].Issuer.CommonName
	}
	fmt.Printf("status=%d issuer=%q body=%q\n", resp.StatusCode, issuer, body)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "egressclient:", err)
	os.Exit(1)
}
