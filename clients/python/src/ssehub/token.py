"""Minting the JWTs the hub accepts: HMAC-signed (HS256/384/512), with the Mercure claim
``{"mercure": {"publish": [...], "subscribe": [...]}}`` whose entries are topic selectors
(``*``, an exact topic, or a URI template)."""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import json
import time
from typing import Any, Dict, Iterable, Optional, Union

__all__ = ["mint_token"]

_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _timestamp(exp: Union[int, float, _dt.datetime, _dt.timedelta]) -> int:
    if isinstance(exp, _dt.timedelta):
        return int(time.time() + exp.total_seconds())
    if isinstance(exp, _dt.datetime):
        if exp.tzinfo is None:
            exp = exp.replace(tzinfo=_dt.timezone.utc)
        return int(exp.timestamp())
    return int(exp)


def mint_token(
    secret: Union[str, bytes],
    publish: Optional[Iterable[str]] = None,
    subscribe: Optional[Iterable[str]] = None,
    exp: Union[None, int, float, _dt.datetime, _dt.timedelta] = None,
    *,
    payload: Any = None,
    algorithm: str = "HS256",
    claims: Optional[Dict[str, Any]] = None,
) -> str:
    """A signed token granting ``publish`` and ``subscribe`` (lists of topic selectors).

    ``exp``: a Unix timestamp, an aware (or UTC) ``datetime``, or a ``timedelta`` from now;
    ``None`` leaves the claim out. ``payload`` goes into ``mercure.payload``; ``claims``
    adds registered claims (``iss``, ``aud``, ``sub``...).
    """
    if algorithm not in _HASHES:
        raise ValueError(f"unsupported algorithm {algorithm!r}: use HS256, HS384 or HS512")
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if not key:
        raise ValueError("the secret is empty")
    mercure: Dict[str, Any] = {}
    if publish is not None:
        mercure["publish"] = list(publish)
    if subscribe is not None:
        mercure["subscribe"] = list(subscribe)
    if payload is not None:
        mercure["payload"] = payload
    body: Dict[str, Any] = dict(claims or {})
    body["mercure"] = mercure
    if exp is not None:
        body["exp"] = _timestamp(exp)
    header = {"alg": algorithm, "typ": "JWT"}
    signing_input = (
        _b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64(json.dumps(body, separators=(",", ":")).encode())
    )
    signature = hmac.new(key, signing_input.encode("ascii"), _HASHES[algorithm]).digest()
    return signing_input + "." + _b64(signature)
