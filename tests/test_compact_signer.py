"""CompactSigner makes the very tokens joserfc's jwt.encode makes, and they verify."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from flask_passkey.core.tokens import ALGORITHM, CompactSigner

CLAIMS: list[dict[str, Any]] = [
    {"iss": "https://login.acme.test/", "sub": "passkey|abc", "iat": 1, "exp": 2},
    {"aud": "x", "scope": "openid profile", "name": "Zoë Ünïcode ✓", "amr": ["swk", "mfa"]},
    {"org_id": None, "nested": {"a": [1, 2.5, True]}, "email_verified": False},
]


@pytest.fixture(scope="module")
def key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": ALGORITHM, "use": "sig"})


@pytest.mark.parametrize("typ", ["JWT", "at+jwt"])
@pytest.mark.parametrize("claims", CLAIMS)
def test_same_bytes_as_joserfc(key: RSAKey, typ: str, claims: dict[str, Any]) -> None:
    expected = jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": typ}, claims, key, [ALGORITHM])
    token = CompactSigner(key).encode(typ, claims)
    assert token == expected
    decoded = jwt.decode(token, key, [ALGORITHM])
    assert decoded.header == {"typ": typ, "alg": ALGORITHM, "kid": key.kid}
    assert decoded.claims == claims


def test_a_key_that_may_not_sign_is_refused() -> None:
    verify_only = RSAKey.generate_key(2048, parameters={"kid": "v", "key_ops": ["verify"]})
    with pytest.raises(Exception):  # noqa: B017 - joserfc's own error, as jwt.encode raises
        CompactSigner(verify_only)
