// Package tui is the terminal wizard: bubbletea models for the screens
// (start, hosts, bootstrap mode, TLS style, review, host keys, apply, done),
// their key maps and styles.
//
// The wizard edits a *plan.Plan and asks the plan package every question
// that has a rule behind it (validation findings, defaults, DNS records,
// command lines, exports). Applying goes through the Applier interface,
// implemented over the remote package by tui/applier; the tui package itself
// never touches a host.
package tui
