package server

import (
	"context"
	"fmt"
	"net"

	"go.uber.org/zap"

	"etcdctl-wizard/node/version"
)

// SystemResolver resolves with the system resolver, first address wins, as
// etcd's advertise URL check does.
func SystemResolver(ctx context.Context, hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return "", err
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("no address for %s", host)
	}
	return net.JoinHostPort(addrs[0], port), nil
}

func versionServer() string  { return version.Server }
func versionCluster() string { return version.Cluster }

// raftLogger adapts zap to raft's Logger interface.
type raftLogger struct{ s *zap.SugaredLogger }

func newRaftLogger(lg *zap.Logger) *raftLogger {
	return &raftLogger{s: lg.WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

func (l *raftLogger) Debug(v ...any)                 { l.s.Debug(v...) }
func (l *raftLogger) Debugf(format string, v ...any) { l.s.Debugf(format, v...) }
func (l *raftLogger) Error(v ...any)                 { l.s.Error(v...) }
func (l *raftLogger) Errorf(format string, v ...any) { l.s.Errorf(format, v...) }
func (l *raftLogger) Info(v ...any)                  { l.s.Info(v...) }
func (l *raftLogger) Infof(format string, v ...any)  { l.s.Infof(format, v...) }
func (l *raftLogger) Warning(v ...any)               { l.s.Warn(v...) }
func (l *raftLogger) Warningf(format string, v ...any) {
	l.s.Warnf(format, v...)
}
func (l *raftLogger) Fatal(v ...any)                 { l.s.Fatal(v...) }
func (l *raftLogger) Fatalf(format string, v ...any) { l.s.Fatalf(format, v...) }
func (l *raftLogger) Panic(v ...any)                 { l.s.Panic(v...) }
func (l *raftLogger) Panicf(format string, v ...any) { l.s.Panicf(format, v...) }
