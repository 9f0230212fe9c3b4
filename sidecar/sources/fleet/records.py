"""The fleet's data in Redis: key names, the encrypted profile records, and the Lua scripts that
make a lease, a compare-and-set write and a compare-and-delete release atomic.

Layout under ``<prefix>`` (nothing secret in a key name or a message; profile ids and agent ids
are names, not secrets)::

    <prefix>:agents                       set of agents with fleet profiles
    <prefix>:agent:<agent>:profiles       set of the agent's profile ids
    <prefix>:agent:<agent>:gen            counter bumped by every write (the hosts' version check)
    <prefix>:agent:<agent>:state          order/lastGood/usageStats JSON (no secrets)
    <prefix>:profile:<agent>:<id>         hash: version, fence, kid, blob (AES-GCM), provider,
                                          type, expires
    <prefix>:lease:<agent>:<id>           the refresh lease: a random owner, PX ttl
    <prefix>:fence:<agent>:<id>           fencing counter, INCR on every lease granted
    channel <prefix>:changed              "<agent> <id> <version>" after every write
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sidecar.errors import StoreError
from sidecar.sources.fleet.crypto import Keyring, Sealed
from sidecar.sources.openclaw import model
from sidecar.sources.openclaw.model import JSONObject, Profile


@dataclass(frozen=True)
class Keys:
    prefix: str

    @property
    def agents(self) -> str:
        return f"{self.prefix}:agents"

    @property
    def channel(self) -> str:
        return f"{self.prefix}:changed"

    def index(self, agent: str) -> str:
        return f"{self.prefix}:agent:{agent}:profiles"

    def gen(self, agent: str) -> str:
        return f"{self.prefix}:agent:{agent}:gen"

    def state(self, agent: str) -> str:
        return f"{self.prefix}:agent:{agent}:state"

    def profile(self, agent: str, pid: str) -> str:
        return f"{self.prefix}:profile:{agent}:{pid}"

    def lease(self, agent: str, pid: str) -> str:
        return f"{self.prefix}:lease:{agent}:{pid}"

    def fence(self, agent: str, pid: str) -> str:
        return f"{self.prefix}:fence:{agent}:{pid}"


@dataclass(frozen=True)
class Record:
    """One fleet profile as read: ``version`` is what a compare-and-set write must match."""

    agent: str
    profile_id: str
    version: int
    fence: int
    kid: str
    profile: Profile
    fields: JSONObject = field(repr=False)


def aad(keys: Keys, agent: str, pid: str, version: int) -> bytes:
    """Binds a ciphertext to its key and version: a blob copied to another profile, or an old
    blob written back over a newer record, does not decrypt."""
    return json.dumps([keys.prefix, agent, pid, version]).encode()


def encode(
    keyring: Keyring, keys: Keys, agent: str, pid: str, fields: Mapping[str, Any], version: int
) -> dict[str, str]:
    """The hash fields of a record at ``version`` (the secrets only inside ``blob``)."""
    sealed = keyring.seal(json.dumps(dict(fields)).encode(), aad(keys, agent, pid, version))
    expires = fields.get("expires")
    return {
        "kid": sealed.kid,
        "blob": sealed.blob,
        "provider": str(fields.get("provider", "")),
        "type": str(fields.get("type", fields.get("mode", ""))),
        "expires": str(expires) if isinstance(expires, int) else "",
    }


def decode(keyring: Keyring, keys: Keys, agent: str, pid: str, raw: Mapping[str, str]) -> Record:
    """A record from its hash; ``SealError`` when the key does not open it."""
    version = int(raw.get("version", "0"))
    what = f"fleet profile {pid} of agent {agent}"
    sealed = Sealed(raw.get("kid", ""), raw.get("blob", ""))
    plain = keyring.open(sealed, aad(keys, agent, pid, version), what)
    fields = json.loads(plain)
    entry = model.parse_entry(pid, fields)
    if isinstance(entry, model.InvalidEntry):
        raise StoreError(f"{what} is not a valid profile ({entry.reason}); push it again")
    return Record(agent, pid, version, int(raw.get("fence", "0")), sealed.kid, entry, fields)


# KEYS: lease, fence. ARGV: owner, ttl_ms. The fence number, or nil when the lease is taken.
ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return false
"""

# KEYS: lease. ARGV: owner. Deletes the lease only if it is still ours.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: lease. ARGV: owner, ttl_ms. Extends the lease only if it is still ours.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS: profile, lease, gen, index, agents. ARGV: expected version, lease owner ('' = creating
# or re-saving without a lease), fence, profile id, agent, channel, then field/value pairs.
# {1, new version} written; {0, version} another writer was first; {-1, v} the lease is not
# ours (it expired); {-2, v} a writer with a newer fence already wrote.
WRITE = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return {0, current} end
if ARGV[2] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[2] then return {-1, current} end
if tonumber(ARGV[3]) < tonumber(redis.call('HGET', KEYS[1], 'fence') or '0') then
  return {-2, current}
end
local nextv = current + 1
redis.call('HSET', KEYS[1], 'version', nextv, 'fence', ARGV[3], unpack(ARGV, 7))
redis.call('SADD', KEYS[4], ARGV[4])
redis.call('SADD', KEYS[5], ARGV[5])
redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[6], ARGV[5] .. ' ' .. ARGV[4] .. ' ' .. nextv)
return {1, nextv}
"""

# KEYS: profile, lease, gen, index. ARGV: expected version, lease owner, profile id, channel,
# agent. Same answers as WRITE.
DELETE = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return {0, current} end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return {-1, current} end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[4], ARGV[3])
redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[4], ARGV[5] .. ' ' .. ARGV[3] .. ' 0')
return {1, 0}
"""

WRITE_OUTCOMES = {
    0: "another host wrote this profile first",
    -1: "the refresh lease expired before the write",
    -2: "a host with a newer lease already wrote this profile",
}
