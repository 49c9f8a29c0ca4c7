// Package certs is the cluster's PKI on the operator's laptop: the CA
// (ca.crt, ca.key), each member's peer certificate (--peer-cert-file) and
// client-port certificate (--cert-file), client certificates for the wizard
// and for operators' etcdctl, the SAN rules that tie certificates to a plan
// (SANsForMember), and the checks that say what is wrong with a set of
// certificate files and what to do about it (Check, ScanDir).
//
// Keys and signatures are made with cloudflare/cfssl behind a small
// internal interface (cfssl.go is the only file that imports it); cfssl's
// logger is silenced so it never writes to the terminal. Every certificate
// cfssl returns is parsed again and compared with what was asked for.
//
// The CA key never leaves the CA directory: CA exposes only the certificate,
// and nothing here copies ca.key elsewhere. Keys are written 0600,
// certificates 0644, directories 0700, always through a temporary file and
// a rename.
package certs
