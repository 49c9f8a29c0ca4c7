package main

import (
	"crypto/tls"
	"errors"
	"net/url"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"etcdctl-wizard/node/config"
	"etcdctl-wizard/node/tlsconfig"
)

// tlsSetup holds the TLS configurations a member needs: its client port,
// its peer port, and its dialing side towards other members.
type tlsSetup struct {
	clientServer *tls.Config
	peerServer   *tls.Config
	peerClient   *tls.Config
}

// setupTLS applies auto-TLS, checks the certificate files and builds the
// configurations, in etcd's order of checks.
func setupTLS(cfg *config.Config, lg *zap.Logger) (*tlsSetup, error) {
	now := time.Now()
	if err := autoTLS(&cfg.ClientTLS, filepath.Join(cfg.DataDir, "fixtures", "client"),
		append(append([]url.URL(nil), cfg.ListenClientURLs...), cfg.ListenClientHTTPURLs...), cfg.SelfSignedCertValidity, "client", lg, now); err != nil {
		return nil, err
	}
	if err := autoTLS(&cfg.PeerTLS, filepath.Join(cfg.DataDir, "fixtures", "peer"), cfg.ListenPeerURLs, cfg.SelfSignedCertValidity, "peer", lg, now); err != nil {
		return nil, err
	}
	if errs := cfg.CheckListenerTLS(); len(errs) > 0 {
		return nil, errs[0]
	}
	if err := tlsconfig.CheckFiles("client", cfg.ClientTLS, now); err != nil {
		return nil, err
	}
	if err := tlsconfig.CheckFiles("peer", cfg.PeerTLS, now); err != nil {
		return nil, err
	}
	common, err := tlsconfig.ParseCommon(cfg)
	if err != nil {
		return nil, err
	}
	out := &tlsSetup{}
	if hasScheme(cfg.ListenClientURLs, "https") {
		if out.clientServer, err = tlsconfig.ServerConfig(cfg.ClientTLS, common, false); err != nil {
			return nil, err
		}
	} else if !cfg.ClientTLS.Empty() {
		lg.Warn("scheme is http while key and cert files are present; ignoring key and cert files for client URLs")
	}
	if hasScheme(cfg.ListenPeerURLs, "https") {
		if out.peerServer, err = tlsconfig.ServerConfig(cfg.PeerTLS, common, true); err != nil {
			return nil, err
		}
	}
	if !cfg.PeerTLS.Empty() || cfg.PeerTLS.TrustedCAFile != "" {
		if out.peerClient, err = tlsconfig.ClientConfig(cfg.PeerTLS, common); err != nil {
			return nil, err
		}
	}
	if hasScheme(cfg.InitialAdvertisePeerURLs, "https") && out.peerClient == nil {
		return nil, errors.New("https peer URLs need peer TLS settings (--peer-cert-file/--peer-key-file or --peer-auto-tls)")
	}
	return out, nil
}

func autoTLS(info *config.TLSInfo, dir string, listen []url.URL, years uint, side string, lg *zap.Logger, now time.Time) error {
	if !info.AutoTLS {
		return nil
	}
	if info.CertFile != "" || info.KeyFile != "" {
		lg.Warn("ignoring " + side + " auto TLS since certs given")
		return nil
	}
	var hosts []string
	for _, u := range listen {
		hosts = append(hosts, u.Hostname())
	}
	certFile, keyFile, err := tlsconfig.SelfCert(dir, hosts, years, now)
	if err != nil {
		return err
	}
	info.CertFile, info.KeyFile = certFile, keyFile
	return nil
}

func hasScheme(urls []url.URL, scheme string) bool {
	for _, u := range urls {
		if u.Scheme == scheme {
			return true
		}
	}
	return false
}
