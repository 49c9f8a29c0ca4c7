// Package remote owns everything that touches hosts. This part holds the
// transports: one Transport interface with two implementations,
//
//   - SSH (DialSSH): golang.org/x/crypto/ssh with ssh-agent and key files,
//     ~/.ssh/config (Host, HostName, User, Port, IdentityFile, ProxyJump), jump
//     hosts, keepalives and timeouts, known_hosts checking with explicit consent
//     for new keys, SFTP uploads, and sudo for non-root logins.
//   - Local (NewLocal): the same operations on this machine, for the sandbox
//     plan whose members run on 127.0.0.1.
//
// # The contract
//
// Run executes a shell command line (sh syntax; build it with Quote) and
// streams its output. A non-zero exit is an *ExitError carrying the status
// and, when the caller did not take stderr, its tail. Cancelling ctx kills the
// command and everything in its session on the host (sshd ignores "signal"
// requests on root logins, so the transport kills by session id); processes
// that started a session of their own, such as supervised members, survive. Cmd.Root runs the
// command as root: directly when the login user is root, through `sudo -n`
// otherwise, or through `sudo -S` with a password that SSHOptions.SudoPassword
// is asked for once per transport and that is written to sudo's stdin, never
// to argv.
//
// Upload writes a file as root, idempotently: when the host already has the
// same sha256 (and mode and owner) nothing is sent and UploadResult.Changed is
// false. Otherwise the content goes to a temporary name in the destination
// folder (SFTP with concurrent writes), its sha256 is computed on the host
// (openssl when present, else sha256sum) and compared, and only then is it
// renamed over the destination:
// a cut connection or a corrupted transfer never leaves a half-written file
// under the real name. A mismatch is a *ChecksumError with both sums.
//
// ReadFile reads a file as root; a missing file gives an error that matches
// fs.ErrNotExist. Dial opens a TCP connection from the host (SSH direct-tcpip),
// which is how cluster status reaches member client URLs behind a bastion.
//
// An SSH transport connects in DialSSH, so unknown host keys and failed
// logins surface before any work starts. When the connection dies later
// (keepalives unanswered, TCP reset) the operation in flight fails with an
// error matching ErrConnLost, and the next operation dials again: operations
// are never retried behind the caller's back, because a command is not
// necessarily idempotent.
//
// # Host keys
//
// KnownHosts checks keys against an OpenSSH known_hosts file (through
// skeema/knownhosts, which also restricts the host key algorithms to the types
// recorded for the host, so a host with several key types is not mistaken for
// a changed one). An unknown key is trusted only when the Confirm callback says
// so after seeing its SHA256 fingerprint; it is then appended to the file. A
// changed key is always a *HostKeyChangedError naming the old and the new
// fingerprints. There is no way to turn checking off.
package remote
