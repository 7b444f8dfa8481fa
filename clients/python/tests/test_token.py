import base64
import datetime as dt
import hashlib
import hmac
import json
import time

import pytest

from ssehub import mint_token


def part(token, i):
    seg = token.split(".")[i]
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


def test_claim_shape_and_signature():
    token = mint_token("secret", publish=["news"], subscribe=["*"], exp=2_000_000_000)
    assert part(token, 0) == {"alg": "HS256", "typ": "JWT"}
    assert part(token, 1) == {
        "mercure": {"publish": ["news"], "subscribe": ["*"]},
        "exp": 2_000_000_000,
    }
    head, body, sig = token.split(".")
    want = hmac.new(b"secret", f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(want).rstrip(b"=").decode() == sig


def test_exp_forms_and_algorithms():
    soon = part(mint_token("k", exp=dt.timedelta(seconds=60)), 1)["exp"]
    assert abs(soon - (time.time() + 60)) < 5
    at = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    assert part(mint_token("k", exp=at), 1)["exp"] == int(at.timestamp())
    assert "exp" not in part(mint_token("k"), 1)
    assert part(mint_token("k", algorithm="HS512"), 0)["alg"] == "HS512"
    with pytest.raises(ValueError):
        mint_token("k", algorithm="none")
    with pytest.raises(ValueError):
        mint_token("")
