// Package nodetest starts real clusters of member processes for tests and drives them with the
// real upstream etcdctl.
//
// The process handling lives in package proc (shared with the benchmark program, which must not
// import "testing"); this package wraps it with testing.TB so that every helper fails the test
// on error, prints the members' logs when the test fails, and cleans up with t.Cleanup.
package nodetest
