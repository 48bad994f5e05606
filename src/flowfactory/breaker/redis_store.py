"""Breaker state in Redis, shared by every worker of a fleet.

One hash per dependency holds the state; every transition is one Lua script, so it is atomic
and decided on Redis's own clock (no skew between hosts). What purgatory's Redis store gets
wrong, and this does not:

* the trip uses the result of the increment, so N workers failing at once cannot overshoot the
  threshold by N;
* half-open admits ``half_open_probes`` calls across the fleet, each holding a lease that
  expires if its worker dies;
* outcomes carry the generation they were admitted in, so a stale success cannot close it;
* sockets time out (``socket_timeout``), so a Redis that accepts but never answers costs a
  bounded wait; the registry then falls back to local breakers with a warning;
* the healthy path only reads.

The client is redis-py's synchronous one: it is thread-safe and bound to no event loop, so
Prefect's task threads can share it (an asyncio client is bound to the loop that made it).
"""

from __future__ import annotations

import random
from typing import Any, Final, cast

import redis

from flowfactory.breaker.model import (
    RETRY_TOKENS,
    Outcome,
    Override,
    SharedAdmission,
    State,
    Transition,
)
from flowfactory.config import CircuitBreakerConfig

__all__ = ["RedisStore"]

DEFAULT_TIMEOUT: Final = 0.25  # seconds; a breaker check must never stall a task for long

_ADMIT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'state', 'until', 'gen', 'probes', 'deadline', 'override')
local state = h[1] or 'closed'
local gen = tonumber(h[3] or '0')
local override = h[6] or ''
if override == 'forced-open' then return {0, state, gen, 0, -1, override, 0} end
if override ~= '' then return {1, state, gen, 0, 0, override, 0} end
if state == 'closed' then return {1, state, gen, 0, 0, '', 0} end
local moved = 0
local probes = tonumber(h[4] or '0')
if state == 'open' then
  local open_until = tonumber(h[2] or '0')
  if now < open_until then return {0, state, gen, 0, open_until - now, '', 0} end
  state = 'half-open'
  gen = gen + 1
  probes = 0
  moved = 1
  redis.call('HSET', KEYS[1], 'state', state, 'gen', gen, 'probes', 0)
elseif probes > 0 and now > tonumber(h[5] or '0') then
  probes = 0  -- the probes' workers died without reporting: their leases are over
end
if probes >= tonumber(ARGV[1]) then
  return {0, state, gen, 0, tonumber(ARGV[3]), '', moved}
end
redis.call('HSET', KEYS[1], 'probes', probes + 1, 'deadline', now + tonumber(ARGV[2]))
return {1, state, gen, 1, 0, '', moved}
"""

_RECORD: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'state', 'gen', 'reopens', 'probes', 'tokens')
local state = h[1] or 'closed'
local gen = tonumber(h[2] or '0')
-- The fleet's retry budget: a success earns ARGV[9] tokens, a failure costs one.
local most = tonumber(ARGV[10])
local tokens = tonumber(h[5] or ARGV[10])
if ARGV[2] == 'success' and tokens < most then
  redis.call('HSET', KEYS[1], 'tokens', math.min(most, tokens + tonumber(ARGV[9])))
elseif ARGV[2] == 'failure' then
  redis.call('HSET', KEYS[1], 'tokens', math.max(0, tokens - 1))
end
if gen ~= tonumber(ARGV[1]) then return {'stale', 0} end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'probes', math.max(0, tonumber(h[4] or '0') - 1))
end
local outcome = ARGV[2]
local failures = 1
if outcome == 'neutral' or state == 'open' then return {'', 0} end
local function open()
  local reopens = tonumber(h[3] or '0')
  local span = tonumber(ARGV[5]) * tonumber(ARGV[6]) ^ reopens
  span = math.min(span, tonumber(ARGV[7])) * (1 - tonumber(ARGV[8]))
  span = math.floor(span)
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', now + span, 'gen', gen + 1,
             'failures', 0, 'reopens', reopens + 1, 'probes', 0)
  return {'open', span, failures}
end
if state == 'closed' then
  if outcome == 'success' then
    redis.call('HSET', KEYS[1], 'failures', 0)
    return {'', 0}
  end
  failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if failures >= tonumber(ARGV[4]) then return open() end
  return {'', 0}
end
if outcome == 'success' then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'gen', gen + 1, 'failures', 0,
             'reopens', 0, 'probes', 0)
  return {'closed', 0}
end
return open()
"""

_SPEND_RETRY: Final = """
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or ARGV[1])
if tokens <= tonumber(ARGV[1]) / 2 then return 0 end
redis.call('HSET', KEYS[1], 'tokens', math.max(0, tokens - 1))
return 1
"""
_STATUS: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'state', 'until', 'failures', 'override')
local state = h[1] or 'closed'
local wait = -1
if state == 'open' then
  wait = math.max(0, tonumber(h[2] or '0') - now)
  if wait == 0 then state = 'half-open' end
end
return {state, wait, tonumber(h[3] or '0'), h[4] or ''}
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore:
    """A ``SharedStore`` on Redis; keys are ``<namespace>:cb:<dependency>``."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "flowfactory",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        # Options in the URL (?socket_timeout=...) win over these defaults.
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
        )
        self.prefix = f"{namespace}:cb:"
        self._admit = self.client.register_script(_ADMIT)
        self._record = self.client.register_script(_RECORD)
        self._status = self.client.register_script(_STATUS)
        self._spend_retry = self.client.register_script(_SPEND_RETRY)

    def key(self, dependency: str) -> str:
        """The Redis key of a dependency's breaker."""
        return f"{self.prefix}{dependency}"

    def admit(self, dependency: str, config: CircuitBreakerConfig) -> SharedAdmission:
        """Admit or reject one call (see ``_ADMIT``)."""
        reset_ms = int(config.reset_after.total_seconds() * 1000)
        lease_ms = max(reset_ms, 60_000)
        raw = cast(
            "list[Any]",
            self._admit(
                keys=[self.key(dependency)], args=[config.half_open_probes, lease_ms, reset_ms]
            ),
        )
        admitted, state, generation, probe, wait_ms, override, moved = raw
        override_text = _text(override)
        return SharedAdmission(
            admitted=bool(admitted),
            state=cast("State", _text(state)),
            generation=int(generation),
            probe=bool(probe),
            retry_after=None if int(wait_ms) < 0 else int(wait_ms) / 1000,
            override=Override(override_text) if override_text else None,
            # This worker moved the circuit to half-open: it alone reports the transition.
            moved_to_half_open=bool(moved),
        )

    def record(
        self,
        dependency: str,
        config: CircuitBreakerConfig,
        admission: SharedAdmission,
        outcome: Outcome,
    ) -> Transition | None:
        """Count one outcome (see ``_RECORD``); returns the transition it caused, if any."""
        jitter = config.jitter * random.random()  # noqa: S311 - spreading, not secrecy
        raw = cast(
            "list[Any]",
            self._record(
                keys=[self.key(dependency)],
                args=[
                    admission.generation,
                    outcome,
                    int(admission.probe),
                    config.failure_threshold,
                    int(config.reset_after.total_seconds() * 1000),
                    config.backoff,
                    int(config.max_reset_after.total_seconds() * 1000),
                    jitter,
                    config.retry_budget,
                    RETRY_TOKENS,
                ],
            ),
        )
        new, span_ms = _text(raw[0]), int(raw[1])
        if new not in ("open", "closed"):
            return None
        old = admission.state  # the generation matched, so the state is the one admitted in
        span = span_ms / 1000 if new == "open" else None
        failures = int(raw[2]) if new == "open" and len(raw) > 2 else 0
        return Transition(dependency, old, cast("State", new), span, shared=True, failures=failures)

    def spend_retry(self, dependency: str) -> bool:
        """Take one token of the fleet's retry budget (see ``_SPEND_RETRY``)."""
        return bool(self._spend_retry(keys=[self.key(dependency)], args=[RETRY_TOKENS]))

    def force(self, dependency: str, override: Override | None) -> None:
        """Impose (or lift) a state on every worker."""
        if override is None:
            self.client.hdel(self.key(dependency), "override")
        else:
            self.client.hset(self.key(dependency), "override", override.value)

    def reset(self, dependency: str) -> None:
        """Closed, no failures, no override, for every worker."""
        self.client.delete(self.key(dependency))

    def status(self, dependency: str) -> tuple[State, Override | None, int, float | None]:
        """State, override, consecutive failures and seconds until a probe may go."""
        raw = cast("list[Any]", self._status(keys=[self.key(dependency)]))
        state, wait_ms, failures, override = raw
        override_text = _text(override)
        return (
            cast("State", _text(state)),
            Override(override_text) if override_text else None,
            int(failures),
            None if int(wait_ms) < 0 else int(wait_ms) / 1000,
        )

    def dependencies(self) -> list[str]:
        """Every dependency with state in Redis, by name."""
        names = (_text(k)[len(self.prefix) :] for k in self.client.scan_iter(f"{self.prefix}*"))
        return sorted(names)
