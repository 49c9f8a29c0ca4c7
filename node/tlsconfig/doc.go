// Package tlsconfig builds a member's TLS settings from etcd's flags: the
// server side of the client and peer ports, the client side of peer
// connections, auto-TLS self-signed certificates, and the start-up checks
// that name a bad certificate file before anything listens.
package tlsconfig
