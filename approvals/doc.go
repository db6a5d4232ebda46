// Package approvals is gatebot's approval-gate domain: a Gate asks for a
// pipeline run, eligible people approve or reject it under a Policy (quorum,
// allow-list, self-approval, expiry), and a granted gate is handed to the
// trigger queue exactly once. The Redis store (Store) keeps gates, the
// expiry and poll schedules, the list indexes, the trigger queue and the
// audit log.
//
// It must not import net/http serving code, Teams or Bot Framework packages,
// nor gatebot's bot, cards, handlers or engine packages: callers translate
// their world into Person and Policy. It imports the top-level pipelines
// package (stdlib only) for the one run type, pipelines.Run, that a gate
// stores and providers report.
//
// # Redis key layout
//
// Every key starts with Options.Prefix (P, default "gatebot:"):
//
//	P g:<id>             string  gate record: compact JSON, stored as DEFLATE
//	                             with a preset dictionary behind a tag when
//	                             longer than 256 bytes: 0x02 and the id of the
//	                             learned dictionary (layout 3), 0x01 (older
//	                             layouts; see codec.go); no TTL while live,
//	                             TTL = Options.Retention once final
//	P dict               string  id (hex) of the learned dictionary new records
//	                             are compressed with (see dict.go)
//	P dict:<id>          string  a learned dictionary: a template gate, JSON,
//	                             nothing personal in it; never changes, no
//	                             TTL, must outlive every record naming it
//	P idem:<key>         string  "<request fingerprint> <gate id>" for Create's
//	                             idempotency key; TTL = policy timeout + Retention
//	                             while the gate is live (none without a timeout),
//	                             Retention once it is final
//	P due                zset    expiry schedule: pending gate id → deadline (ms);
//	                             claimed members are pushed forward by a lease;
//	                             an expired gate stays until AckExpired. A gate
//	                             to be reminded joins it only once reminded
//	                             (AckReminder; layout 2: from the start)
//	P poll               zset    run-status poll schedule: gate id → next poll (ms)
//	P ix:ps:<state>:<pipeline>
//	                     zset    the list index: gate ids of one pipeline in
//	                             one state → created (ms); a gate is in one.
//	                             List merges the sets a query names, Resolve
//	                             ZSCANs them (MATCH <prefix>*, bounded),
//	                             CountByState adds up their sizes
//	P ix:pl              set     every pipeline that has had a gate: which
//	                             ix:ps sets exist. (Layout 2 also had ix:all,
//	                             ix:p:<pipeline> and ix:s:<state>;
//	                             MigrateLayout drops them.)
//	P ended              zset    ended gates → end of retention (ms); members
//	                             are JSON arrays [id, pipeline, state], all
//	                             pruning needs to find the ix:ps entry
//	P t:<pipeline>       stream  trigger queue of one pipeline ("gate" field),
//	                             consumer group "triggers"; entries are deleted
//	                             once acked. (Earlier versions had one stream,
//	                             P triggers; PrepareTriggers moves its entries.)
//	P ob:card            zset    outbox: gate ids whose shared card must be synced
//	                             → when (ms); one entry per gate, coalesced
//	P ob:cardver         hash    gate id → the version its card must show
//	P ob:cardlock        hash    gate id → end of the one sync in flight (ms)
//	P ob:cardhold        hash    gate id → end of a click's hold (ms)
//	P ob:cs:<xy>         hash    gate id → digest of the card shown, xy being
//	                             the id's last two characters (1024 small
//	                             listpack hashes, not one large one); forgotten
//	                             once the gate is final and its card synced.
//	                             (Layout 2: one hash, P ob:cardsent.)
//	P cb:due             zset    outbox: callback event id → next attempt (ms)
//	P cb:ev:<event id>   string  callback event: url, attempts, the gate as it
//	                             was at that version (TTL 3 days)
//	P cb:dead            zset    given-up callback event ids → when (ms)
//	P audit              stream  audit log, trimmed to ~Options.AuditMaxLen
//	                             entries and, if set, Options.AuditMaxAge;
//	                             short field names (see audit.go)
//	P unposted           zset    pending gates whose card is not up yet → created +
//	                             Options.UnpostedAfter (ms); left when SetPost
//	                             records the post or the gate ends (DueUnposted)
//	P posting:<id>       string  lease of the one poster of a gate's card: the
//	                             poster's instance name (ClaimPost, ReleasePost,
//	                             TakeOverPost)
//	P remind             zset    pending gates → reminder time (deadline −
//	                             Policy.RemindBefore); left with the decision,
//	                             or for P due once reminded or at the deadline
//	P layout             string  the layout version (Layout) of the data under
//	                             this prefix; CheckLayout refuses a newer one
//	                             and keeps writing layout 2 on layout 2 data
//	                             until MigrateLayout (gatebot gates migrate)
//	                             converts it (see compat.go)
//	P seen:<key>         string  activity de-duplication markers (Once), with TTL
//	                             (handlers: 1 hour per activity)
//	P conv:<key>         string  saved conversation references, no TTL
//
// A gate entering a final state is added to "ended" in the same
// transaction; ExpireDue takes up to 100 gates whose retention is over off
// the ix:ps index and "ended" per call. Index members of gates that ended
// before "ended" existed are pruned when List meets them without a record.
//
// A vote, the gate write, the index moves, the trigger enqueue, the outbox
// entries (card sync, callback event, next poll) and the audit entry happen
// in one compare-and-set script (cas.go): it writes them all only if the
// gate record is still the one the change was decided on, else answers
// with the record stored, and the change is decided again on it. A Store
// remembers the last record it read or wrote per gate (recent.go), so a
// change of a gate it wrote last is one round trip and no decode, and lets
// one change of a gate at a time through (gatelock.go), so it never races
// itself. A click's vote holds the card in its own script (DecideHeld).
// The claims of the card and poll queues also answer when the first entry
// left is due, and a Store signals the card updates it queues (wake.go),
// so the workers sleep until there is work instead of looking every tick. Gate
// creation uses MULTI/EXEC under WATCH. Either way all keys a change
// touches must live in one hash slot on Redis Cluster:
// use a hash-tagged prefix such as "{gatebot}:" there. Single nodes and
// Sentinel need nothing special.
//
// # Memory
//
// A typical pending Teams gate costs about 1,000 bytes of Redis memory
// all-in (TestPendingGatesMemory, 100,000 gates): its record (~410-470),
// one ix:ps member and one due member (~120 each), its "opened" audit
// entry (~240) and, until its card is up, an unposted member (~120), or
// once it is, its card digest (~50). A reminder schedule adds ~120.
// Sorted sets of more than 128 members cost ~120 bytes a member
// whatever the member, so the layout keeps one member per gate in each.
package approvals
