"""Every Redis key and RQ queue name relay uses, in one place, under one prefix.

Layout (p = RELAY_KEY_PREFIX):
  {p}seq                         counter: orders feeds (events, subscriptions, attempts, ...)
  {p}src:{id}                    hash: one source
  {p}srcs                        zset: source ids by creation seq
  {p}srcs:acct                   hash: "{base_url} {username}" -> source id (one per account)
  {p}src:{id}:lock               string: poller token holding the source
  {p}pollers                     zset: poller token -> last heartbeat (epoch s)
  {p}pollers:late                hash: poller token -> p99 of its recent polls' lateness (s)
  {p}seen:{source_id}:{second}   hash: documentIds already ingested in that message second
  {p}ev:{id}                     string: one event (type, source, ts, created ms, body; LF-joined)
  {p}evs                         zset: event ids by seq (the feed, newest first)
  {p}evs:ts                      zset: event ids by message timestamp (replay windows)
  {p}evs:num                     hash: event id -> its numbers ("from LF recipient"), so the
                                 trim of an expired event finds its `num:` entries (search.py)
  {p}doc:{document_id}           string: ids of the events of that documentId (space-separated;
                                 one unless two sources share it), TTL of the event
  {p}num:{number}                zset: ids of events with that `from` or `recipient` (exactly as
                                 the upstream sent it) by message timestamp; trimmed with evs
  {p}evd:{event_id}              hash: the event's deliveries: subscription id -> its last
                                 attempt ("count|attempt|status|at|outcome"), `dl:{sub}` -> its
                                 dead letter id; TTL of the event (event_deliveries.py)
  {p}eva:{event_id}              list: the event's attempts, all subscriptions, newest first,
                                 capped; TTL of the event
  {p}stream                      stream: delivery hand-off (fields below), group "dispatch"
  {p}stream:replay               stream: the replay lane (replays, redeliveries, dead-letter
                                 retries), same fields and group, read after the live stream
  {p}run:{stream_entry_id}       set: subscription ids already settled for that entry
  {p}sub:{id}                    hash: one subscription
  {p}subs                        zset: subscription ids by seq
  {p}subs:version                counter: bumped on every subscription change
  {p}att:{subscription_id}       zset: attempt JSON by seq, capped
  {p}dl:{id}                     string: dead letter JSON
  {p}dls                         zset: dead letter ids by seq
  {p}retry:{event_id}:{sub_id}   hash: state of a delivery in the retry queue
  {p}hb:{role}:{instance}        string: heartbeat + metrics snapshot of one process (TTL)
  {p}instances                   zset: "{role}|{instance}" -> last heartbeat (epoch s); kept
                                 after a crash (readiness names the role), removed on clean stop
  {p}dpm:{minute}                hash: attempt counts in that epoch minute (see attempts.py)
  {p}subhealth:{sub_id}          hash: a subscription's health record (see health.py; TTL)
  {p}subretry:{sub_id}           zset: event ids of its deliveries in the retry queue by due time
  {p}subdl:{sub_id}              zset: ids of its dead letters by expiry (epoch s)
  {p}lim:{sub_id}:tat            string: its rate limiter's next start (us, Redis clock; TTL)
  {p}lim:{sub_id}:leases         zset: its deliveries in flight, lease token by expiry (us)
  {p}ui:{sha256 of session id}   string: one web console session (JSON; TTL)
  {p}probe                       string: a write probe of readiness (is Redis out of memory?)
  {p}ten:{id}                    hash: one tenant
  {p}tens                        zset: tenant ids by seq
  {p}ten:{id}:srcs, :subs        zset: the tenant's source / subscription ids by seq
  {p}key:{id}                    hash: one API key (its SHA-256 digest, never the key)
  {p}keys                        zset: API key ids by seq
  {p}keydig:{sha256 hex}         string: the id of the key with that digest (lookup)
  {p}audit                       zset: audit entry JSON by seq, capped
  {p}authfail:{address}:{minute} counter: failed authentications of one client (TTL)
  RQ queue "{p}retry"            RQ keys are rq:queue:{p}retry, rq:job:{id}, ...

Stream entry fields: `e` event id; optional `s` subscription id (only that one);
optional `x` = "1" for an explicit replay/redelivery (ignores the created-after rule).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

DISPATCH_GROUP = "dispatch"


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "relay:"

    @property
    def seq(self) -> str:
        return f"{self.prefix}seq"

    def source(self, source_id: str) -> str:
        return f"{self.prefix}src:{source_id}"

    @property
    def sources(self) -> str:
        return f"{self.prefix}srcs"

    @property
    def sources_created(self) -> str:
        """The pub/sub channel a new source's id is published on: pollers discover it at once."""
        return f"{self.prefix}srcs:created"

    @property
    def source_accounts(self) -> str:
        return f"{self.prefix}srcs:acct"

    def source_lock(self, source_id: str) -> str:
        return f"{self.prefix}src:{source_id}:lock"

    @property
    def pollers(self) -> str:
        return f"{self.prefix}pollers"

    @property
    def poller_lateness(self) -> str:
        return f"{self.prefix}pollers:late"

    def seen(self, source_id: str, second: int) -> str:
        return f"{self.prefix}seen:{source_id}:{second}"

    def event(self, event_id: str) -> str:
        return f"{self.prefix}ev:{event_id}"

    @property
    def events(self) -> str:
        return f"{self.prefix}evs"

    @property
    def events_by_time(self) -> str:
        return f"{self.prefix}evs:ts"

    @property
    def event_numbers(self) -> str:
        return f"{self.prefix}evs:num"

    def document(self, document_id: str) -> str:
        return f"{self.prefix}doc:{document_id}"

    def number(self, number: str) -> str:
        return f"{self.prefix}num:{number}"

    def event_deliveries(self, event_id: str) -> str:
        return f"{self.prefix}evd:{event_id}"

    def event_attempts(self, event_id: str) -> str:
        return f"{self.prefix}eva:{event_id}"

    @property
    def stream(self) -> str:
        return f"{self.prefix}stream"

    @property
    def replay_stream(self) -> str:
        return f"{self.prefix}stream:replay"

    def run(self, entry_id: str) -> str:
        return f"{self.prefix}run:{entry_id}"

    def subscription(self, subscription_id: str) -> str:
        return f"{self.prefix}sub:{subscription_id}"

    @property
    def subscriptions(self) -> str:
        return f"{self.prefix}subs"

    @property
    def subscriptions_version(self) -> str:
        return f"{self.prefix}subs:version"

    @property
    def subscription_changes(self) -> str:
        """Subscription ids scored by the version of their latest change (routing caches)."""
        return f"{self.prefix}subs:changes"

    def attempts(self, subscription_id: str) -> str:
        return f"{self.prefix}att:{subscription_id}"

    def dead_letter(self, dead_letter_id: str) -> str:
        return f"{self.prefix}dl:{dead_letter_id}"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}dls"

    def retry_state(self, event_id: str, subscription_id: str) -> str:
        return f"{self.prefix}retry:{event_id}:{subscription_id}"

    @property
    def retry_queue(self) -> str:
        """The RQ queue name (RQ stores it as rq:queue:{name})."""
        return f"{self.prefix}retry"

    def heartbeat(self, role: str, instance: str) -> str:
        """A role instance's heartbeat with its metrics snapshot (expires when it dies)."""
        return f"{self.prefix}hb:{role}:{instance}"

    def subscription_health(self, subscription_id: str) -> str:
        return f"{self.prefix}subhealth:{subscription_id}"

    def subscription_retries(self, subscription_id: str) -> str:
        return f"{self.prefix}subretry:{subscription_id}"

    @property
    def retrying_subscriptions(self) -> str:
        """Subscriptions with deliveries in the retry queue, by when a drain of theirs is due
        (store/retry_queue.py): how status counts retries, and the sweep's safety net."""
        return f"{self.prefix}retrysubs"

    @property
    def retries_running(self) -> str:
        """Retries being attempted now, `{event}:{subscription}` by lease expiry."""
        return f"{self.prefix}retryrun"

    def drain_limit(self, subscription_id: str) -> str:
        """The RQ rate-limit key that lets one drain job of a subscription run at a time."""
        return f"{self.prefix}drain:{subscription_id}"

    def subscription_dead_letters(self, subscription_id: str) -> str:
        return f"{self.prefix}subdl:{subscription_id}"

    def limit_tat(self, subscription_id: str) -> str:
        """When the subscription's next rate-limited delivery may start (store/limits.py)."""
        return f"{self.prefix}lim:{subscription_id}:tat"

    def limit_leases(self, subscription_id: str) -> str:
        """The subscription's concurrency leases by expiry (store/limits.py)."""
        return f"{self.prefix}lim:{subscription_id}:leases"

    def delivery_minute(self, minute: int) -> str:
        """Attempt counters of one epoch minute (`int(at // 60)`), for the console's chart."""
        return f"{self.delivery_minute_prefix}{minute}"

    @property
    def delivery_minute_prefix(self) -> str:
        return f"{self.prefix}dpm:"

    def idempotency(self, operation: str, key_hash: str) -> str:
        """The remembered answer to one `Idempotency-Key` (its SHA-256) of one operation."""
        return f"{self.prefix}idem:{operation}:{key_hash}"

    def ui_session(self, session_hash: str) -> str:
        """One web console session, keyed by the SHA-256 of its cookie value."""
        return f"{self.prefix}ui:{session_hash}"

    def tenant(self, tenant_id: str) -> str:
        return f"{self.prefix}ten:{tenant_id}"

    @property
    def tenants(self) -> str:
        return f"{self.prefix}tens"

    def tenant_sources(self, tenant_id: str) -> str:
        return f"{self.prefix}ten:{tenant_id}:srcs"

    def tenant_subscriptions(self, tenant_id: str) -> str:
        return f"{self.prefix}ten:{tenant_id}:subs"

    def api_key(self, key_id: str) -> str:
        return f"{self.prefix}key:{key_id}"

    @property
    def api_keys(self) -> str:
        return f"{self.prefix}keys"

    def api_key_digest(self, digest: str) -> str:
        return f"{self.prefix}keydig:{digest}"

    @property
    def audit(self) -> str:
        return f"{self.prefix}audit"

    def auth_failures(self, address: str, minute: int) -> str:
        return f"{self.prefix}authfail:{address}:{minute}"

    @property
    def heartbeats_pattern(self) -> str:
        return f"{self.prefix}hb:*"

    def liveness(self, role: str) -> str:
        """A role's instances (stream consumers, RQ workers) scored by their last fast beat,
        so a dead one's work is taken over in seconds (heartbeats.py)."""
        return f"{self.prefix}live:{role}"

    @property
    def memory_probe(self) -> str:
        return f"{self.prefix}probe"

    @property
    def role_instances(self) -> str:
        """Every role instance seen lately, scored by its last heartbeat (readiness)."""
        return f"{self.prefix}instances"

    @property
    def rq_queue(self) -> str:
        """RQ's list of jobs ready to run on the retry queue."""
        return f"rq:queue:{self.retry_queue}"

    @property
    def rq_job_id_prefix(self) -> str:
        """The start of every retry job id (RQ keys rq:job:{id}, ...). RQ ids allow only
        letters, digits, `_` and `-`, so the key prefix is hashed."""
        return "relay-" + hashlib.sha256(self.prefix.encode()).hexdigest()[:12]

    @property
    def rq_scheduled(self) -> str:
        """RQ's registry of retries waiting for their time."""
        return f"rq:scheduled:{self.retry_queue}"

    @property
    def rq_started(self) -> str:
        """RQ's registry of retries running now (RQ 2+ calls it "wip")."""
        return f"rq:wip:{self.retry_queue}"

    def rate_limit(self, subscription_id: str) -> str:
        """The RQ rate-limit key one subscription's retries share (its concurrency cap)."""
        return f"{self.prefix}sub:{subscription_id}"

    def rq_rate_limited(self, rate_limit_key: str) -> str:
        """RQ's set of retries held back by a rate limit: due, but its slots are taken."""
        return f"rq:rl:{rate_limit_key}:rate_limited"

    @property
    def rq_rate_limits(self) -> str:
        """RQ's index of rate-limit keys (every prefix's; ours start with `rate_limit`'s)."""
        return "rq:rl-keys"

    @property
    def rq_failed(self) -> str:
        """RQ's registry of retry jobs that crashed (not dead letters: those are ours)."""
        return f"rq:failed:{self.retry_queue}"
