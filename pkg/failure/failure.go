// Package failure is the one vocabulary of probe failure classes: the
// class names as stored and printed, and what each means to the rest of
// the program (did the probe reach an SSH server? did it get past the
// host-key check? what should an operator do?). It is a leaf: probe,
// proberun, report and doctor import it, so no class name is retyped.
package failure

// Class is the reason a probe failed; the empty Class means success. The
// string is stored in the heartbeats and probe_runs tables and printed in
// JSON and metrics, so the names never change.
type Class string

// The failure classes.
const (
	Key             Class = "key"              // the server's own key file (servers add --key) is missing, unreadable or unusable
	DNS             Class = "dns"              // host name did not resolve
	Refused         Class = "refused"          // TCP connection refused
	Unreachable     Class = "unreachable"      // no route to host or network
	Timeout         Class = "timeout"          // no answer within the probe timeout or run deadline
	Banner          Class = "banner"           // peer answered but is not SSH
	Throttled       Class = "throttled"        // sshd dropped the connection before its banner because of MaxStartups
	Handshake       Class = "handshake"        // SSH peer failed or hung up during key exchange
	HostKeyUnknown  Class = "hostkey-unknown"  // host key not in known_hosts
	HostKeyMismatch Class = "hostkey-mismatch" // host key differs from the pinned or known one
	Auth            Class = "auth"             // login refused (or no usable credentials)
	Exec            Class = "exec"             // the check command failed
)

// attrs are a class's attributes; one table so adding a class is one line.
type attrs struct {
	// connect: the probe never reached an SSH server (nothing was spoken),
	// so a fleet failing this way points at the monitoring host.
	connect bool
	// pastHostKey: key exchange completed and the host key was accepted.
	pastHostKey bool
	advice      string
}

var table = map[Class]attrs{
	// Key: nothing was dialled, but the fault is this server's setting,
	// not the network, so it is not connect-level.
	Key:         {advice: "fix the key file's path or permissions (chmod 600, readable by the probe user), or give the server another key with heartbeat servers set NAME --key PATH"},
	DNS:         {connect: true, advice: "fix the host name or DNS (servers import can update hosts)"},
	Refused:     {connect: true, advice: "start sshd on the server or register the right --port"},
	Unreachable: {connect: true, advice: "check routing and firewalls between this host and the server"},
	Timeout:     {connect: true, advice: "check the server is up and its firewall lets SSH in from this host"},
	Banner:      {advice: "the port answers but is not SSH: register the right --port"},
	// Throttled: the server is up and speaking SSH, only too busy.
	Throttled:       {advice: "sshd refused the connection at its MaxStartups limit: stagger probes of this host, lower --concurrency, or raise MaxStartups in sshd_config"},
	Handshake:       {advice: "the server dropped the SSH handshake: check its sshd logs (MaxStartups, allowed algorithms)"},
	HostKeyUnknown:  {advice: "add the server to known_hosts (ssh-keyscan) or use --host-key-policy pin"},
	HostKeyMismatch: {advice: "verify the new key, then heartbeat servers trust NAME"},
	Auth:            {pastHostKey: true, advice: "deploy the monitoring public key to the server's ~/.ssh/authorized_keys for the probe user"},
	Exec:            {pastHostKey: true, advice: "the --exec command failed on the server: run it there by hand"},
}

// Classes lists every failure class, in the order a probe meets them.
func Classes() []Class {
	return []Class{Key, DNS, Refused, Unreachable, Timeout, Banner, Throttled, Handshake, HostKeyUnknown, HostKeyMismatch, Auth, Exec}
}

// Known reports whether c is one of the classes above (the empty success
// class is not).
func (c Class) Known() bool {
	_, ok := table[c]
	return ok
}

// Connect reports whether c means the probe never reached an SSH server
// (nothing was spoken): DNS, refused, unreachable or timeout.
func (c Class) Connect() bool { return table[c].connect }

// PastHostKeyCheck reports whether a probe ending with c got past the
// host-key check, so the key it saw belongs to a completed key exchange.
// Success (the empty class) did.
func (c Class) PastHostKeyCheck() bool { return c == "" || table[c].pastHostKey }

// HostKeyRejected reports whether the host key was the reason for failing.
func (c Class) HostKeyRejected() bool { return c == HostKeyUnknown || c == HostKeyMismatch }

// Advice is what `heartbeat doctor` tells an operator to do about servers
// failing with c; a general pointer for a class it does not know (a row
// written by a newer version).
func (c Class) Advice() string {
	if a, ok := table[c]; ok {
		return a.advice
	}
	return "see `heartbeat status --verbose`"
}
