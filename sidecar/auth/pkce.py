"""Login-flow pieces (RFC 7636 PKCE): the authorize URL to open, and the code in what comes back.

Only the random state and verifier are impure; the callback server and the code exchange (see
``grants.code_request``) live with the login command.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from sidecar.errors import SidecarError
from sidecar.providers import oauth
from sidecar.providers.grants import ProviderAuth, Style
from sidecar.secret import Secret


class LoginError(SidecarError):
    """A login could not finish: the provider said no, or what came back is not ours."""

    code = "login_failed"
    status = 400


@dataclass(frozen=True)
class LoginStart:
    """The URL to open, and what the login must keep to check and exchange the answer."""

    url: str
    state: str
    verifier: Secret


# Authorize parameters each provider's own CLI adds: the Codex CLI's (spec §9), and Claude
# Code's `code=true`, which makes the provider's callback page show `code#state` to paste.
DEFAULT_EXTRAS: Final[Mapping[Style, tuple[tuple[str, str], ...]]] = {
    "openai": (("id_token_add_organizations", "true"), ("codex_cli_simplified_flow", "true")),
    "anthropic": (("code", "true"),),
}
# RFC 7636 §4.1: 43 to 128 unreserved characters; 64 of [A-Za-z0-9] carry ~380 bits.
_VERIFIER: Final = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_VERIFIER_LENGTH: Final = 64
_STATE_LENGTH: Final = 32
_HOW_TO_PASTE: Final = "paste the whole redirect URL from the browser's address bar, or the code"


def start_login(
    auth: ProviderAuth,
    *,
    extra_params: Sequence[tuple[str, str]] | None = None,
    state: str | None = None,
    verifier: Secret | None = None,
) -> LoginStart:
    """A fresh authorization request with PKCE S256; ``state``/``verifier`` fixed only in tests.

    ``extra_params`` default to the provider style's ``DEFAULT_EXTRAS``.
    """
    if auth.authorize_url is None or auth.redirect_uri is None:
        raise LoginError(f"{auth.provider} has no browser login (no authorize_url/redirect_uri)")
    verifier = verifier or Secret(oauth.random_token(_VERIFIER_LENGTH))
    if not _VERIFIER.fullmatch(verifier.reveal()):
        raise ValueError("a PKCE verifier is 43-128 unreserved characters (RFC 7636 §4.1)")
    state = state or oauth.random_token(_STATE_LENGTH)
    challenge = (("code_challenge", oauth.s256_challenge(verifier.reveal())),)
    params = (*challenge, ("code_challenge_method", "S256"))
    extras = DEFAULT_EXTRAS.get(auth.style, ()) if extra_params is None else tuple(extra_params)
    url = oauth.authorize_url(
        auth.authorize_url,
        client_id=auth.client_id,
        redirect_uri=auth.redirect_uri,
        scope=auth.scope,
        state=state,
        params=(*params, *extras),
    )
    return LoginStart(url, state, verifier)


def parse_callback(text: str, expected_state: str) -> str:
    """The authorization code in a redirect URL, a ``?query``, ``code#state`` or a bare code.

    Only a bare code (pasted by hand) goes unchecked against ``expected_state``. Messages
    never repeat the text, which holds the code.
    """
    text = text.strip()
    if not text:
        raise LoginError(f"nothing was given; {_HOW_TO_PASTE}")
    if _is_redirect(text):
        return _redirect_code(text if "?" in text else f"?{text}", expected_state)
    if "#" in text:
        return _fragment_code(text, expected_state)
    if any(char.isspace() for char in text):
        raise LoginError(f"that is neither a code nor a redirect URL; {_HOW_TO_PASTE}")
    return text


def _is_redirect(text: str) -> bool:
    return "://" in text or text.startswith("?") or "code=" in text or "error=" in text


def _redirect_code(url: str, expected_state: str) -> str:
    try:
        return oauth.redirect_code(url, expected_state)
    except ValueError as exc:  # a fixed text from oauth, never the URL's
        raise LoginError(f"{exc}; start the login again") from exc


def _fragment_code(text: str, expected_state: str) -> str:
    """Anthropic's callback page shows ``code#state``."""
    code, _, state = text.partition("#")
    if not code:
        raise LoginError(f"there is no code before '#'; {_HOW_TO_PASTE}")
    if state != expected_state:
        raise LoginError("the pasted state does not match this login; start the login again")
    return code
