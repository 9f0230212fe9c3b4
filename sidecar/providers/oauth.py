"""The one adapter around authlib: PKCE, random tokens, authorize URLs, token form bodies and
redirect parsing, plus unverified JWT claims. Nothing else in the sidecar imports authlib;
authlib exceptions are translated here, so callers see only ``ValueError`` with a fixed text."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from typing import Final, cast
from urllib.parse import parse_qsl, urlsplit

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.errors import MismatchingStateException, MissingCodeException
from authlib.oauth2.rfc6749.parameters import (
    parse_authorization_code_response,
    prepare_grant_uri,
    prepare_token_request,
)
from authlib.oauth2.rfc7636 import create_s256_code_challenge

# An authorization-error code (RFC 6749 §4.1.2.1) is echoed only when it looks like one.
_ERROR_CODE: Final = re.compile(r"[a-z_]{1,40}")


def random_token(length: int) -> str:
    """``length`` characters of [A-Za-z0-9] from ``random.SystemRandom`` (authlib)."""
    return str(generate_token(length))


def s256_challenge(verifier: str) -> str:
    """RFC 7636 §4.2 ``S256``: BASE64URL(SHA256(ASCII(verifier))), unpadded."""
    return str(create_s256_code_challenge(verifier))


def authorize_url(
    url: str,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str | None,
    state: str,
    params: Sequence[tuple[str, str]],
) -> str:
    """The authorization request (RFC 6749 §4.1.1): ``url`` with the code-flow query added."""
    query = {"redirect_uri": redirect_uri, "scope": scope, "state": state, **dict(params)}
    return str(prepare_grant_uri(url, client_id, "code", **query))


def token_form(grant_type: str, params: Sequence[tuple[str, str]]) -> bytes:
    """An ``application/x-www-form-urlencoded`` token request body (RFC 6749 §4.1.3, §6).

    authlib drops empty values, so callers check that required ones are non-empty.
    """
    return str(prepare_token_request(grant_type, **dict(params))).encode("ascii")


def redirect_code(url: str, expected_state: str) -> str:
    """The ``code`` of a redirect URL (or ``?query``) after the provider's answer is checked.

    Raises ``ValueError`` with a fixed message (never the URL's text) when the URL does not
    parse, carries ``error=``, has no code, or its state is not ``expected_state``.
    """
    try:
        query = dict(parse_qsl(urlsplit(url).query))
    except ValueError as exc:  # e.g. "http://[::1" (an unclosed IPv6 host)
        raise ValueError("that is not a redirect URL") from exc
    if "error" in query:
        error = query["error"]
        shown = error if _ERROR_CODE.fullmatch(error) else "an unrecognised error"
        raise ValueError(f"the provider refused the login ({shown})")
    if not expected_state:  # authlib would skip the state check (CSRF, RFC 6749 §10.12)
        raise ValueError("this login has no state to check the redirect against")
    try:
        params = parse_authorization_code_response(url, state=expected_state)
    except MissingCodeException as exc:
        raise ValueError("the redirect carries no code") from exc
    except MismatchingStateException as exc:
        raise ValueError("the redirect's state does not match this login") from exc
    return str(params["code"])


def decode_claims(jwt: str) -> dict[str, object]:
    """The payload of a compact JWS, NOT verified (we only read our own token's claims).

    ``{}`` for anything that is not a three-part token with a JSON-object payload.
    """
    # Not authlib.jose: it verifies signatures (we hold no key) and, deprecated since authlib
    # 1.6 in favour of joserfc, it warns on import, which our -W error test run refuses.
    # joserfc.jws.extract_compact could do this, but joserfc is only a transitive dependency.
    parts = jwt.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (ValueError, RecursionError):  # binascii.Error and UnicodeError are ValueErrors
        return {}
    return cast(dict[str, object], claims) if isinstance(claims, dict) else {}
