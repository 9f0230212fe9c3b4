"""``import claude-cli | codex-cli``: another CLI's login turned into an OpenClaw profile.

The readers are pure (a parsed document in, profile fields out, store spec §10); ``read`` does
the one file read. The notice says who owns the refresh token from now on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from sidecar.errors import SidecarError
from sidecar.providers import oauth

Source = Literal["claude-cli", "codex-cli"]
SOURCES: Final[tuple[Source, ...]] = ("claude-cli", "codex-cli")
_AUTH_CLAIMS: Final = "https://api.openai.com/auth"
_PROFILE_CLAIMS: Final = "https://api.openai.com/profile"


class ImportFailed(SidecarError):
    """The external CLI's credential file is missing or does not hold a login."""

    code = "import_failed"
    status = 400


@dataclass(frozen=True)
class Imported:
    """What an import stores: the default profile id and the profile's fields."""

    profile_id: str
    fields: dict[str, object]

    @property
    def is_oauth(self) -> bool:
        return self.fields["type"] == "oauth"


def default_path(source: Source, environ: Mapping[str, str]) -> Path:
    """Claude Code: ``~/.claude/.credentials.json``; Codex: ``$CODEX_HOME/auth.json``, else
    ``~/.codex/auth.json`` (``~`` is ``$HOME``)."""
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    if source == "claude-cli":
        return home / ".claude" / ".credentials.json"
    codex_home = Path(environ["CODEX_HOME"]) if environ.get("CODEX_HOME") else home / ".codex"
    return codex_home / "auth.json"


def read(source: Source, path: Path) -> Imported:
    """The profile the credential file at ``path`` holds; ImportFailed names the file."""
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ImportFailed(f"{path}: no such file; {_hint(source)}") from None
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read it ({exc.strerror})") from exc
    except (ValueError, RecursionError):  # messages of json could quote the file's secrets
        raise ImportFailed(f"{path}: not a JSON file; {_hint(source)}") from None
    try:
        return _READERS[source](doc)
    except ValueError as exc:
        raise ImportFailed(f"{path}: {exc}; {_hint(source)}") from None


def _hint(source: Source) -> str:
    if source == "claude-cli":
        return "sign in with `claude` first, or give the file with --path"
    return "sign in with `codex login` first, or give the file with --path"


# --- pure readers -------------------------------------------------------------------------------


def claude_profile(doc: object) -> Imported:
    """Claude Code's ``{"claudeAiOauth": {accessToken, refreshToken, expiresAt (ms)}}``."""
    login = _object(doc, "claudeAiOauth") if isinstance(doc, dict) else None
    if login is None:
        raise ValueError("it holds no Claude login (claudeAiOauth)")
    expires = login.get("expiresAt")
    if isinstance(expires, bool) or not isinstance(expires, int) or expires <= 0:
        raise ValueError("claudeAiOauth.expiresAt is not a time in milliseconds")
    fields: dict[str, object] = {
        "type": "oauth",
        "provider": "anthropic",
        "access": _required(login, "accessToken", "claudeAiOauth"),
        "refresh": _required(login, "refreshToken", "claudeAiOauth"),
        "expires": expires,
    }
    return Imported("anthropic:claude-cli", fields)


def codex_profile(doc: object) -> Imported:
    """Codex CLI's ``auth.json``: its ChatGPT login (``tokens``), else its OPENAI_API_KEY."""
    if not isinstance(doc, dict):
        raise ValueError("it is not a JSON object")
    tokens = _object(doc, "tokens")
    if tokens is not None and tokens.get("access_token"):
        return _codex_oauth(tokens)
    key = doc.get("OPENAI_API_KEY")
    if isinstance(key, str) and key.strip():
        fields: dict[str, object] = {"type": "api_key", "provider": "openai", "key": key.strip()}
        return Imported("openai:codex-cli", fields)
    raise ValueError("it holds neither a ChatGPT login (tokens) nor an OPENAI_API_KEY")


def _codex_oauth(tokens: dict[str, object]) -> Imported:
    access = _required(tokens, "access_token", "tokens")
    claims = oauth.decode_claims(access)
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float) or exp <= 0:
        raise ValueError("tokens.access_token carries no expiry (exp claim)")
    id_token = _string(tokens, "id_token")
    id_claims = oauth.decode_claims(id_token or "")
    optional = {
        "accountId": _string(tokens, "account_id")
        or _claim(claims, _AUTH_CLAIMS, "chatgpt_account_id"),
        "chatgptPlanType": _claim(claims, _AUTH_CLAIMS, "chatgpt_plan_type")
        or _claim(id_claims, _AUTH_CLAIMS, "chatgpt_plan_type"),
        "email": _claim(claims, _PROFILE_CLAIMS, "email") or _string(id_claims, "email"),
        "idToken": id_token,
    }
    fields: dict[str, object] = {
        "type": "oauth",
        "provider": "openai-codex",
        "access": access,
        "refresh": _required(tokens, "refresh_token", "tokens"),
        "expires": int(exp * 1000),
        **{name: value for name, value in optional.items() if value is not None},
    }
    return Imported("openai-codex:codex-cli", fields)


_READERS: Final[Mapping[Source, Callable[[object], Imported]]] = {
    "claude-cli": claude_profile,
    "codex-cli": codex_profile,
}


def _object(doc: dict[str, object], key: str) -> dict[str, object] | None:
    value = doc.get(key)
    return value if isinstance(value, dict) else None


def _string(doc: dict[str, object], key: str) -> str | None:
    value = doc.get(key)
    return value if isinstance(value, str) and value else None


def _required(doc: dict[str, object], key: str, where: str) -> str:
    value = _string(doc, key)
    if value is None:
        raise ValueError(f"{where}.{key} is missing or empty")
    return value


def _claim(claims: dict[str, object], namespace: str, key: str) -> str | None:
    scope = _object(claims, namespace)
    return _string(scope, key) if scope is not None else None


# --- what the user must know ------------------------------------------------------------------


def ownership_notice(source: Source, imported: Imported, path: Path) -> str:
    """The single-use refresh-token warning (an API key: that the CLI keeps working). How to
    point the CLI at the sidecar follows it: that is ``openclaw-sidecar wire``'s recipe."""
    if not imported.is_oauth:
        return "An API key is not refreshed, so the Codex CLI keeps working with it.\n"
    cli = "Claude Code" if source == "claude-cli" else "the Codex CLI"
    return (
        f"Refresh tokens are single-use: once the sidecar refreshes this login, the copy in "
        f"{path} is dead and {cli} will be logged out. The sidecar owns this login now.\n"
    )
