// Package assets holds what the wizard ships to hosts: text templates (the
// systemd unit) embedded with go:embed, and, once built by make, the node
// binaries.
package assets

import "embed"

// Templates holds templates/*.tmpl.
//
//go:embed templates/*.tmpl
var Templates embed.FS
