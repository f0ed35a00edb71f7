// Package store defines the repository every heartbeat command shares: the
// Store interface, its domain types and the errors callers branch on.
//
// Two engines implement it: pkg/store/postgres (production: several probe
// hosts, one truth) and pkg/store/sqlite (the zero-setup default). Their
// behaviour is pinned by one conformance suite, pkg/store/storetest.
//
// Timestamps come from the store's clock, never the caller's, so that
// several probe hosts agree on what "60 seconds ago" means (the explicit At
// of ProbeResult and Push, for tests and backfills, is the one exception).
// Every time a method returns has Location() == time.UTC, whatever the
// session time zone of the database.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Errors callers branch on. Implementations wrap them with context, so test
// with errors.Is.
var (
	// ErrNotFound: the server or alert named does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the write would break a uniqueness rule (a server name
	// already taken, an alert already resolved).
	ErrConflict = errors.New("conflict")
	// ErrSchemaBehind: the store's schema is older than this binary; the
	// operator must run `heartbeat migrate`.
	ErrSchemaBehind = errors.New("schema is behind this binary")
	// ErrUnavailable: the store could not be reached.
	ErrUnavailable = errors.New("store unavailable")
	// ErrInvalid: a value the store refuses (a spec that fails Validate, an
	// unknown mode, a value the schema's checks reject). Callers map it to
	// a usage error (exit 64, HTTP 400).
	ErrInvalid = errors.New("invalid")
)

// Server modes: how a server's heartbeat arrives.
const (
	// ModeSSH servers are probed by probe-ssh.
	ModeSSH = "ssh"
	// ModePush servers push their own heartbeats over the API; probe-ssh
	// skips them, so they collect no SSH failures.
	ModePush = "push"
)

// Heartbeat sources.
const (
	SourceSSH = "ssh"
	SourceAPI = "api"
)

// Alert kinds and severities, as the source system named them.
const (
	KindAlert   = "alert"
	KindAnomaly = "anomaly"

	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Alert sources: who raised an alert. Alerts raised before sources were
// recorded have "".
const (
	AlertSourceCLI          = "cli"
	AlertSourceAPI          = "api"
	AlertSourceAlertmanager = "alertmanager"
)

// DefaultPort is the SSH port a server gets when none is given.
const DefaultPort = 22

// Server is a registered server.
type Server struct {
	ID   int64
	Name string
	Host string
	Port int
	// User is the SSH login; empty means the prober's default.
	User string
	// KeyPath is a per-server private key; empty means the prober's default.
	KeyPath string
	// HostKey is the pinned SSH host key in wire format, nil until the
	// first successful probe pins one.
	HostKey []byte
	// HostKeyIsCA says HostKey is a certificate authority's public key
	// (servers trust --ca): the server must present a host certificate
	// that CA signed. A probe never replaces such a pin on first use.
	HostKeyIsCA bool
	// SeenHostKey is the last key presented that did not match the pin,
	// kept so an admin can compare fingerprints before trusting it.
	SeenHostKey []byte
	// Mode is ModeSSH or ModePush.
	Mode    string
	Enabled bool
	// StaleAfter is how old its last heartbeat may be before the server is
	// OFFLINE (DefaultStaleAfter unless set).
	StaleAfter time.Duration
	// TokenlessFrom lists the networks from which the API accepts this
	// server's pushes without a token, for the source system's agent,
	// which sends none (see SetServerTokenless); nil, the default, accepts
	// none.
	TokenlessFrom []netip.Prefix
	CreatedAt     time.Time
}

// ServerSpec is what an admin supplies to register or update a server.
type ServerSpec struct {
	Name    string
	Host    string
	Port    int // 0 means DefaultPort
	User    string
	KeyPath string
	// Mode is ModeSSH or ModePush; "" means ModeSSH. Imports leave the
	// mode of an existing server alone.
	Mode string
	// StaleAfter is the server's freshness window; 0 means
	// DefaultStaleAfter (and, in an import, leaves an existing server's
	// own alone).
	StaleAfter time.Duration
	// Line is where the spec came from in an imported file (1-based; 0
	// when it did not come from a file), so that errors can name it.
	Line int
}

// Heartbeat is the liveness record of one server. A server that was never
// probed nor pushed has the zero Heartbeat.
type Heartbeat struct {
	// LastHeartbeat is the last successful probe or push; nil if never.
	LastHeartbeat *time.Time
	// Source of LastHeartbeat: SourceSSH or SourceAPI.
	Source       string
	AgentVersion string
	// LastProbe is the last SSH probe attempt, successful or not.
	LastProbe *time.Time
	// LastErrorClass and LastError describe the last failed probe; both are
	// cleared by a success.
	LastErrorClass      string
	LastError           string
	Latency             time.Duration
	ConsecutiveFailures int
	// Phases are the step timings of the last SSH probe, failed or not.
	Phases Phases
}

// Phases holds how long each step of an SSH probe took; a step not reached
// is zero. (pkg/probe measures them; the store keeps the last probe's.)
type Phases struct {
	Dial   time.Duration // TCP connect, including DNS
	Banner time.Duration // from the start of the SSH handshake until the server's version line arrived
	Kex    time.Duration // key exchange, up to and including the host-key check
	Auth   time.Duration // user authentication
	Exec   time.Duration // the --exec command
}

// ServerStatus joins a server with what status needs to judge it.
type ServerStatus struct {
	// Server is the server without its SSH credentials, keys and created
	// time (User, KeyPath, HostKey, HostKeyIsCA, SeenHostKey,
	// TokenlessFrom and CreatedAt are left zero): no status view shows
	// them, and a fleet's host keys were a fifth of what reading 100,000
	// status rows allocated. Servers and Server read them.
	Server
	Heartbeat
	// ActiveAlerts counts unresolved alerts and anomalies.
	ActiveAlerts int
	// State and StateSince are the state the last evaluation recorded and
	// when the server entered it; "" and nil before the first evaluation.
	// Status rules judge the live state from the heartbeat; these say
	// since when.
	State      string
	StateSince *time.Time
	// InMaintenance: a maintenance window is active at the snapshot's
	// clock; MaintenanceUntil and MaintenanceReason are that window's end
	// and reason (the latest-starting one if several overlap).
	InMaintenance     bool
	MaintenanceUntil  *time.Time
	MaintenanceReason string
	// Locations is each probe location's last word on the server, by
	// location name, filled by engines that keep per-location results
	// (Postgres) when more than one location has run within
	// LocationWindow; nil otherwise (one location says nothing the
	// heartbeat does not).
	Locations []LocationResult
}

// LocationResult is one location's last probe of a server.
type LocationResult struct {
	Location string
	// LastOK is its last successful probe, nil if none; LastProbe its
	// last probe, successful or not.
	LastOK    *time.Time
	LastProbe time.Time
	// ErrorClass and Error say why the last probe failed; empty when it
	// succeeded.
	ErrorClass string
	Error      string
}

// LocationWindow is how recently a location must have finished a probe
// run for status to show its results per server.
const LocationWindow = time.Hour

// Snapshot is the state of the fleet read in one query, with the store's
// clock at that moment.
type Snapshot struct {
	Now     time.Time
	Servers []ServerStatus
}

// AlertSpec is a new alert or anomaly.
type AlertSpec struct {
	ServerID int64
	Kind     string
	Severity string
	Message  string
	// Source says who raised it (AlertSourceCLI, AlertSourceAPI,
	// AlertSourceAlertmanager); "" is allowed.
	Source string
	// ExternalKey, when set, is the name the raising system knows the
	// alert by (an Alertmanager fingerprint, a caller's own id). A server
	// has at most one active alert per key: raising a key that is already
	// active returns that alert instead of a new one, and the key resolves
	// it (ResolveAlertByKey, ApplyKeyedAlerts).
	ExternalKey string
}

// AlertKey names an alert by its server and external key.
type AlertKey struct {
	ServerID int64
	Key      string
}

// KeyedAlertsResult counts what ApplyKeyedAlerts did.
type KeyedAlertsResult struct {
	// Raised counts new alerts; the other raises found their key already
	// active (or their server removed meanwhile) and changed nothing.
	Raised int
	// Resolved counts alerts resolved; the other keys had no active alert.
	Resolved int
}

// Alert is an alert or anomaly raised against a server. It is active until
// ResolvedAt is set.
type Alert struct {
	ID         int64
	ServerID   int64
	ServerName string
	Kind       string
	Severity   string
	Message    string
	// Source and ExternalKey are the spec's ("" when not given).
	Source      string
	ExternalKey string
	CreatedAt   time.Time
	ResolvedAt  *time.Time
	// Existing is set by RaiseAlert when the spec's ExternalKey was
	// already active on the server and that alert was returned instead of
	// a new one. It is not stored.
	Existing bool
}

// ImportResult counts what ImportServers did.
type ImportResult struct {
	Added, Updated, Unchanged int
}

// Store is the repository. Every method that does I/O takes a context and
// honours its deadline. Implementations are safe for concurrent use.
type Store interface {
	// Now returns the store's clock.
	Now(ctx context.Context) (time.Time, error)

	// AddServer registers a server. A taken name is ErrConflict.
	AddServer(ctx context.Context, spec ServerSpec) (Server, error)
	// Server returns one server by id. Unknown id is ErrNotFound.
	Server(ctx context.Context, id int64) (Server, error)
	// ServerByName returns one server by its exact name, or ErrNotFound.
	ServerByName(ctx context.Context, name string) (Server, error)
	// Servers lists all servers ordered by name.
	Servers(ctx context.Context) ([]Server, error)
	// RemoveServer deletes a server with its heartbeat and alerts.
	RemoveServer(ctx context.Context, id int64) error
	// SetServerEnabled enables or disables a server.
	SetServerEnabled(ctx context.Context, id int64, enabled bool) error
	// UpdateServer replaces a server's host, port, user and key with
	// spec's, keeping its name, mode, pinned host key and history. spec
	// must be valid (its Name is the server's own); its Mode is ignored.
	// Unknown id is ErrNotFound, an invalid spec ErrInvalid.
	UpdateServer(ctx context.Context, id int64, spec ServerSpec) (Server, error)
	// SetServerMode sets how a server's heartbeat arrives (ModeSSH or
	// ModePush; anything else is ErrInvalid, see ValidateMode).
	SetServerMode(ctx context.Context, id int64, mode string) error
	// ImportServers upserts servers by name in one transaction: all are
	// written or none. A spec that fails Validate is ErrInvalid; a name
	// that appears twice is ErrConflict naming both lines (see
	// ValidateImport), and nothing is written.
	ImportServers(ctx context.Context, specs []ServerSpec) (ImportResult, error)

	// RaiseAlert records an active alert. Unknown server is ErrNotFound.
	// When spec.ExternalKey is already active on the server it returns
	// that alert, unchanged, with Existing set, and records nothing.
	RaiseAlert(ctx context.Context, spec AlertSpec) (Alert, error)
	// ResolveAlert marks an alert resolved at the store's clock. Unknown id
	// is ErrNotFound; an already resolved alert is ErrConflict.
	ResolveAlert(ctx context.Context, id int64) (Alert, error)
	// ResolveAlertByKey resolves the server's active alert with that
	// external key at the store's clock. When none is active it is
	// ErrConflict if the server had one with that key (returned: the last
	// resolved), else ErrNotFound (also for an unknown server).
	ResolveAlertByKey(ctx context.Context, serverID int64, key string) (Alert, error)
	// ApplyKeyedAlerts resolves and raises alerts by external key in one
	// transaction, in a fixed number of statements whatever the batch
	// size (an Alertmanager payload can carry hundreds). Resolves come
	// first: each resolves the server's active alert with that key, if
	// any. Then each raise whose key is not active on its server records a
	// new alert; raises whose key is active, and raises for servers that
	// no longer exist, change nothing. Every raise must carry an
	// ExternalKey and pass Validate, else ErrInvalid and nothing is done.
	ApplyKeyedAlerts(ctx context.Context, raise []AlertSpec, resolve []AlertKey) (KeyedAlertsResult, error)
	// Alerts lists active alerts, or all of them when all is set, newest
	// first.
	Alerts(ctx context.Context, all bool) ([]Alert, error)

	// Status reads every server with its heartbeat and active alert count,
	// ordered by name, in one query.
	Status(ctx context.Context) (Snapshot, error)
	// EachStatus reads what Status reads, in one query, and hands fn one
	// row at a time with the store's clock (the same for every row), in
	// no particular order, so a reader of a 100,000-server fleet need not
	// hold the whole snapshot. An error from fn stops the read and is
	// returned as is; fn is never called for an empty fleet.
	EachStatus(ctx context.Context, fn func(now time.Time, st ServerStatus) error) error
	// ServerStatus reads one server as Status would, in one query that
	// touches only that server's rows, with the store's clock. Unknown id
	// is ErrNotFound.
	ServerStatus(ctx context.Context, id int64) (ServerStatus, time.Time, error)

	// SetServerToken stores the hash (see HashToken) of a server's API
	// token, replacing any earlier one, which stops working at once. It
	// reports whether a token was replaced. Unknown server is ErrNotFound.
	SetServerToken(ctx context.Context, serverID int64, tokenHash []byte) (replaced bool, err error)
	// SetServerTokenless sets the networks from which the server's pushes
	// are accepted without a token (the source system's agent sends none),
	// replacing any earlier list; nil or empty switches token-less pushes
	// off, as they are by default. The list is normalised and checked as
	// NormalizeTokenless and ValidateTokenless do: a bad one is ErrInvalid.
	// A push that carries a token is judged by its token alone, whatever
	// this says. Unknown server is ErrNotFound.
	SetServerTokenless(ctx context.Context, serverID int64, from []netip.Prefix) error
	// RecordPushes verifies and records a batch of API pushes in one
	// transaction. Each push's token hash is compared in constant time with
	// the server's stored hash, read in the same transaction; a push
	// without a token (empty TokenHash) is verified instead by its
	// RemoteAddr against the server's TokenlessFrom, read in the same
	// query (see VerifiedPushes). Every verified push records a heartbeat
	// (source api, its agent version) at the store's clock, all in one
	// write. The outcomes are in the order of pushes. An unknown server, a
	// server without a token, a wrong token and a token-less push from an
	// address not allowed are all just !OK, indistinguishable to the
	// caller. An error means nothing was recorded.
	RecordPushes(ctx context.Context, pushes []Push) ([]PushOutcome, error)

	// RecordProbeResults writes a batch of SSH probe outcomes in one
	// transaction, stamped with the store's clock. A success records a
	// heartbeat (source ssh), its latency, and clears the error and the
	// failure count; a failure records the class and message and counts
	// one more consecutive failure, leaving the last heartbeat alone.
	// Results for servers removed meanwhile are dropped. If a server
	// appears twice, the later result wins.
	RecordProbeResults(ctx context.Context, results []ProbeResult) error
	// TrustHostKey replaces a server's pinned host key (or CA) with key (nil: clear
	// the pin, so the next probe pins what it sees) and forgets the last
	// mismatching key.
	TrustHostKey(ctx context.Context, serverID int64, key []byte) error
	// TrustHostCA pins the certificate authority ca (wire format, not
	// nil) for a server instead of a plain key, so the server is accepted
	// when it presents a host certificate ca signed, and forgets the last
	// mismatching key. TrustHostKey (with a key or nil) ends a CA pin.
	TrustHostCA(ctx context.Context, serverID int64, ca []byte) error

	// TryProbeLock takes the store-wide probe lock without waiting. It
	// reports false if another run holds it. The lock dies with the
	// process, so a killed run never blocks the next tick.
	TryProbeLock(ctx context.Context) (lock ProbeLock, acquired bool, err error)
	// StartRun records the start of a probe run at the store's clock. The
	// caller holds the probe lock, so any other run still open is dead (its
	// process was killed): StartRun closes those as aborted first.
	StartRun(ctx context.Context, host string, servers int) (Run, error)
	// FinishRun records a run's outcome at the store's clock.
	FinishRun(ctx context.Context, run Run) (Run, error)
	// LastFinishedRun returns the most recently finished run, or nil if
	// none has finished.
	LastFinishedRun(ctx context.Context) (*Run, error)
	// LastAbortedRun returns the most recently started run that a later
	// run found open and closed as aborted, or nil if there is none.
	LastAbortedRun(ctx context.Context) (*Run, error)
	// PruneHistory deletes probe runs that started and resolved alerts
	// that were resolved before the given cutoffs, in batches of
	// p.BatchSize rows, at most p.MaxBatches batches per table, so that a
	// large backlog is worked off over several calls without long locks.
	PruneHistory(ctx context.Context, p PruneParams) (Pruned, error)

	// Setting reads a store-wide setting (see SettingQuorum); ok is false
	// when it was never set.
	Setting(ctx context.Context, key string) (value string, ok bool, err error)
	// SetSetting writes a store-wide setting, replacing its value. The
	// caller validates the value (ValidateSetting).
	SetSetting(ctx context.Context, key, value string) error

	// Evaluate judges every server against the store's clock in a few
	// set-based statements and records each change of its evaluated state
	// as a flip. Two evaluators at once never record the same change twice:
	// the state is updated on the condition that it is still the one read,
	// and the loser records nothing.
	Evaluate(ctx context.Context, p EvalParams) (EvalResult, error)
	// Flips lists recorded flips, oldest first (see FlipQuery).
	Flips(ctx context.Context, q FlipQuery) ([]Flip, error)
	// FlipStates lists the flips of every server (no fleet events) at or
	// after since with only ServerID, At, From and To set, ordered by
	// server, then oldest first: what uptime and flapping read for a
	// whole fleet (FlipsOf finds one server's). Without the name join,
	// the reasons and a sort of the whole result it reads 100,000 flips
	// in a fifth of the time Flips takes.
	FlipStates(ctx context.Context, since time.Time) ([]Flip, error)

	// AddChannel stores a notification channel. It is told only of flips
	// recorded after it was added. A taken name is ErrConflict, an invalid
	// spec ErrInvalid, an unknown server id ErrNotFound.
	AddChannel(ctx context.Context, spec ChannelSpec) (Channel, error)
	// Channels lists the channels, ordered by name, secrets included.
	Channels(ctx context.Context) ([]Channel, error)
	// ChannelByName returns one channel, or ErrNotFound.
	ChannelByName(ctx context.Context, name string) (Channel, error)
	// RemoveChannel deletes a channel with its deliveries. Unknown id is
	// ErrNotFound.
	RemoveChannel(ctx context.Context, id int64) error
	// EnqueueDeliveries queues, in a few set-based statements, one
	// delivery per notifiable flip recorded since each channel's
	// high-water mark and matching its kinds and servers, advancing the
	// mark so history is never scanned again; and a reminder for every
	// channel with a remind interval whose last down or reminder delivery
	// of a server that is still OFFLINE is older than it. Running it twice
	// at once queues nothing twice.
	EnqueueDeliveries(ctx context.Context, p EnqueueParams) (Enqueued, error)
	// ClaimDeliveries atomically claims up to p.Limit deliveries that are
	// due (not delivered, not given up, next attempt reached, unclaimed or
	// claim expired) for p.TTL, oldest first, and returns them joined
	// with their channel and flip. Two claimers at once never get the same
	// delivery while its claim holds.
	ClaimDeliveries(ctx context.Context, p ClaimParams) ([]Delivery, error)
	// RecordDeliveryOutcomes records a batch of outcomes in one
	// transaction: sent is delivered (whoever holds the claim now);
	// unsent releases the claim; a failure counts an attempt and schedules
	// the next by DeliveryBackoff, or gives up once DeliveryGiveUpAfter
	// has passed since the delivery was queued. Failures and releases of
	// a claim another claimer has taken over are ignored.
	RecordDeliveryOutcomes(ctx context.Context, p OutcomeParams) (OutcomeResult, error)
	// DeliveryStats reads the backlog and the failing channels.
	DeliveryStats(ctx context.Context) (DeliveryStats, error)
	// DeliveryEvents lists the deliveries that were delivered or given
	// up at or after since, oldest first, each with its channel's URL,
	// and the store's clock: what /metrics counts.
	DeliveryEvents(ctx context.Context, since time.Time) ([]DeliveryEvent, time.Time, error)
	// StartMaintenance opens a window now (the store's clock) for each
	// server of spec, in one statement, and returns them. An invalid spec
	// or an Until not after the store's clock is ErrInvalid; an unknown
	// server id is ErrNotFound, and then nothing is written.
	StartMaintenance(ctx context.Context, spec MaintenanceSpec) ([]MaintenanceWindow, error)
	// EndMaintenance ends the active windows of the servers named (all of
	// them when all is set) now, and returns how many it ended.
	EndMaintenance(ctx context.Context, serverIDs []int64, all bool) (int, error)
	// MaintenanceWindows lists windows ordered by start then server name:
	// with activeOnly, those not yet over (active and upcoming), else all.
	MaintenanceWindows(ctx context.Context, activeOnly bool) ([]MaintenanceWindow, error)
	// AddSchedule stores a recurring window. An invalid spec (bad cron
	// expression included) is ErrInvalid, a taken name ErrConflict, an
	// unknown server ErrNotFound.
	AddSchedule(ctx context.Context, spec ScheduleSpec) (MaintenanceSchedule, error)
	// Schedules lists the recurring windows by name.
	Schedules(ctx context.Context) ([]MaintenanceSchedule, error)
	// RemoveSchedule deletes a schedule by name (ErrNotFound if none). The
	// windows it made stay, a running one included.
	RemoveSchedule(ctx context.Context, name string) error
	// MaterializeSchedules writes the windows of every schedule's
	// occurrence in progress at the store's clock, once: two callers at
	// once write them once. Evaluate calls it before judging, so callers
	// need not; it returns how many windows it wrote.
	MaterializeSchedules(ctx context.Context) (int, error)

	// Close releases the store's connections.
	Close() error
}

// ProbeLock is a held probe lock.
type ProbeLock interface {
	// Lost is closed when the store finds the lock is no longer held (on
	// Postgres: its session was terminated or the server restarted); Err
	// then says why. Another run may have the lock by then, so the holder
	// must stop writing at once.
	Lost() <-chan struct{}
	// Err is nil while the lock is held and the reason once Lost is closed.
	Err() error
	// Release gives the lock up, within ctx's deadline; if it cannot say
	// so to the store in time it drops the connection, which frees the
	// lock as well.
	Release(ctx context.Context) error
}

// PruneParams says what PruneHistory deletes: runs started before
// RunsBefore (finished or aborted ones only), alerts resolved before
// AlertsResolvedBefore, flips before FlipsBefore together with the
// maintenance windows that ended before it (the history the flips of a
// window explain), and deliveries queued before DeliveriesBefore. A zero
// time prunes nothing of that kind.
type PruneParams struct {
	RunsBefore           time.Time
	AlertsResolvedBefore time.Time
	FlipsBefore          time.Time
	DeliveriesBefore     time.Time
	// BatchSize rows per DELETE (default 1000) and at most MaxBatches
	// DELETEs per table (default 3).
	BatchSize  int
	MaxBatches int
}

// PruneLimits returns p's batch size and batch count with defaults filled
// in, so both engines agree.
func PruneLimits(p PruneParams) (size, batches int) {
	size, batches = p.BatchSize, p.MaxBatches
	if size <= 0 {
		size = 1000
	}
	if batches <= 0 {
		batches = 3
	}
	return size, batches
}

// Pruned counts what PruneHistory deleted.
type Pruned struct {
	Runs, Alerts, Flips, Deliveries int
	// Windows are maintenance windows that ended before FlipsBefore.
	Windows int
}

// ProbeResult is the outcome of probing one server, as the store records
// it. The probe package has its own richer result; the CLI translates.
type ProbeResult struct {
	ServerID int64
	OK       bool
	// ErrorClass and Error say why a probe failed; empty on success.
	ErrorClass string
	Error      string
	Latency    time.Duration
	// Phases are the probe's step timings, kept with the last probe.
	Phases Phases
	// PinHostKey, when set, is pinned if the server has no pinned key yet;
	// an existing pin is never overwritten (first writer wins, even across
	// probe hosts).
	PinHostKey []byte
	// SeenHostKey, when set, is a key that did not match the pin.
	SeenHostKey []byte
	// AcceptedHostKey, when set, is a key that passed the host-key check.
	// It clears the server's last-seen key, unless a different key is
	// pinned by then (`servers trust` raced the run): a server that
	// briefly presented another key and then the pinned one again carries
	// no stale warning. Engines write a key row for every result that
	// sets it, so callers set it only for servers that show a last-seen
	// key (proberun does).
	AcceptedHostKey []byte
	// Location is the probe location the result comes from; engines that
	// keep per-location results (Postgres) record it as that location's
	// last word on the server, the others ignore it. "" records none.
	Location string
	// At, when set, is the time of the probe; zero means the store's
	// clock, which is what probe-ssh uses. It is for tests that need
	// distinct or old timestamps without sleeping, and for backfills.
	At time.Time
}

// Push is a heartbeat pushed over the API, as the client presented it.
type Push struct {
	ServerID int64
	// TokenHash is HashToken of the bearer token the client presented;
	// empty when it presented none (a token-less push: see RemoteAddr).
	TokenHash []byte
	// RemoteAddr is the client's address as the API determined it: the
	// TCP peer, or the forwarding client behind a trusted proxy. Only a
	// token-less push is judged by it (against the server's
	// TokenlessFrom); the zero Addr (unknown) allows nothing.
	RemoteAddr   netip.Addr
	AgentVersion string
	// At, when set, is the time to record; zero means the store's clock,
	// which is what the API uses (it never takes a time from a client).
	// It is for tests and backfills.
	At time.Time
}

// PushOutcome is what RecordPushes did with one Push.
type PushOutcome struct {
	// OK is set when the push was verified (its token matched, or it
	// came without a token from an address the server allows) and the
	// heartbeat was recorded.
	OK bool
	// Tokenless is set with OK when the push was accepted without a
	// token, so the API can count the old agents still in use.
	Tokenless bool
	// ServerName and At (the time recorded, UTC: the store's clock unless
	// the push carried one) are set only when OK.
	ServerName string
	At         time.Time
}

// Run is one probe-ssh run.
type Run struct {
	ID   int64
	Host string
	// Location is the probe location the run belongs to (DefaultLocation
	// unless probe-ssh was given --location).
	Location   string
	StartedAt  time.Time
	FinishedAt *time.Time
	// Servers is how many servers the run set out to probe; for a run
	// that claims its servers (ProbeLeaser), how many it claimed.
	Servers       int
	Probed        int
	Succeeded     int
	FailedByClass map[string]int
	DeadlineHit   bool
	// AbortedAt is set when a later run found this one open (its process
	// was killed) and closed it; FinishedAt then stays nil.
	AbortedAt *time.Time
}

// unavailableError is an ErrUnavailable with its own message, so the
// sentinel's text does not trail every connection error.
type unavailableError struct{ msg string }

func (e *unavailableError) Error() string        { return e.msg }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unavailable returns an error that matches ErrUnavailable and reads as the
// formatted message.
func Unavailable(format string, a ...any) error {
	return &unavailableError{msg: fmt.Sprintf(format, a...)}
}
