"""The software authenticator produces responses that py_webauthn verifies (or rejects)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, options_to_json_dict
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import (
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
)

from flask_passkey.testing import (
    COSE_ALGORITHMS,
    Algorithm,
    SoftAuthenticator,
    android_origin,
    b64url,
)
from tests.apps import ANDROID_FINGERPRINT

RP_ID = "example.com"
ORIGIN = "https://example.com"
ALL_ALGS: Any = [-7, -8, -257]


def registration_options(
    *, user_id: bytes = b"user-1", algs: Any = ALL_ALGS, **kwargs: Any
) -> dict[str, Any]:
    options = generate_registration_options(
        rp_id=RP_ID,
        rp_name="Example",
        user_name="alice",
        user_id=user_id,
        supported_pub_key_algs=algs,
        **kwargs,
    )
    return options_to_json_dict(options)


def authentication_options(**kwargs: Any) -> dict[str, Any]:
    return options_to_json_dict(generate_authentication_options(rp_id=RP_ID, **kwargs))


def verify_create(response: dict[str, Any], options: dict[str, Any], **kwargs: Any) -> Any:
    return verify_registration_response(
        credential=response,
        expected_challenge=base64url_to_bytes(options["challenge"]),
        expected_rp_id=RP_ID,
        expected_origin=kwargs.pop("expected_origin", [ORIGIN]),
        supported_pub_key_algs=ALL_ALGS,
        **kwargs,
    )


def verify_get(
    response: dict[str, Any], options: dict[str, Any], public_key: bytes, **kwargs: Any
) -> Any:
    return verify_authentication_response(
        credential=response,
        expected_challenge=base64url_to_bytes(options["challenge"]),
        expected_rp_id=RP_ID,
        expected_origin=kwargs.pop("expected_origin", [ORIGIN]),
        credential_public_key=public_key,
        credential_current_sign_count=kwargs.pop("current_sign_count", 0),
        **kwargs,
    )


def register(authenticator: SoftAuthenticator, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    options = registration_options(**kwargs)
    response = authenticator.create(options, origin=ORIGIN)
    return response, verify_create(response, options)


@pytest.fixture(scope="module")
def rsa_passkey() -> SoftAuthenticator:
    """One RSA authenticator with one credential, shared because RSA keygen is slow."""
    authenticator = SoftAuthenticator(algorithm="RS256", attestation="packed")
    register(authenticator)
    return authenticator


@pytest.mark.parametrize("attestation", ["none", "packed"])
@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA", "RS256"])
def test_registration_and_assertion_verify_for_every_algorithm_and_format(
    algorithm: Algorithm, attestation: Any
) -> None:
    authenticator = SoftAuthenticator(algorithm=algorithm, attestation=attestation)
    options = registration_options()
    response = authenticator.create(options, origin=ORIGIN)
    registered = verify_create(response, options, require_user_verification=True)

    assert registered.fmt == attestation
    assert registered.credential_id == authenticator.credentials[0].credential_id
    assert registered.credential_public_key == authenticator.credentials[0].cose_public_key
    assert registered.sign_count == 0
    assert registered.user_verified is True
    assert response["response"]["publicKeyAlgorithm"] == COSE_ALGORITHMS[algorithm]

    request = authentication_options()
    assertion = authenticator.get(request, origin=ORIGIN)
    verified = verify_get(
        assertion,
        request,
        registered.credential_public_key,
        require_user_verification=True,
    )
    assert verified.credential_id == registered.credential_id
    assert verified.new_sign_count == 0


def test_responses_have_the_browser_tojson_shape() -> None:
    authenticator = SoftAuthenticator()
    created = authenticator.create(registration_options(user_id=b"u-42"), origin=ORIGIN)
    asserted = authenticator.get(authentication_options(), origin=ORIGIN)

    for response in (created, asserted):
        assert response["id"] == response["rawId"]
        assert len(base64url_to_bytes(response["id"])) == 32
        assert response["type"] == "public-key"
        assert response["authenticatorAttachment"] == "platform"
        assert response["clientExtensionResults"] == {}
        assert not any("=" in v for v in response["response"].values() if isinstance(v, str))
    assert created["response"]["transports"] == ["internal", "hybrid"]
    assert set(asserted["response"]) == {
        "clientDataJSON",
        "authenticatorData",
        "signature",
        "userHandle",
    }
    assert base64url_to_bytes(asserted["response"]["userHandle"]) == b"u-42"
    client_data = json.loads(base64url_to_bytes(asserted["response"]["clientDataJSON"]))
    assert client_data == {
        "type": "webauthn.get",
        "challenge": client_data["challenge"],
        "origin": ORIGIN,
        "crossOrigin": False,
    }


def test_stored_credentials_record_rp_and_user_in_creation_order() -> None:
    authenticator = SoftAuthenticator(aaguid=bytes(range(16)))
    _, first = register(authenticator, user_id=b"first")
    _, second = register(authenticator, user_id=b"second")

    assert [c.user_handle for c in authenticator.credentials] == [b"first", b"second"]
    assert {c.rp_id for c in authenticator.credentials} == {RP_ID}
    assert [c.credential_id for c in authenticator.credentials] == [
        first.credential_id,
        second.credential_id,
    ]
    assert first.aaguid == "00010203-0405-0607-0809-0a0b0c0d0e0f"


def test_increment_counter_counts_up_per_credential() -> None:
    authenticator = SoftAuthenticator(counter="increment")
    _, first = register(authenticator, user_id=b"first")
    _, second = register(authenticator, user_id=b"second")

    counts = []
    for cred, current in [(first, 0), (first, 1), (second, 0), (first, 2)]:
        request = authentication_options()
        assertion = authenticator.get(request, origin=ORIGIN, credential_id=cred.credential_id)
        verified = verify_get(
            assertion, request, cred.credential_public_key, current_sign_count=current
        )
        counts.append(verified.new_sign_count)
    assert counts == [1, 2, 1, 3]
    assert [c.sign_count for c in authenticator.credentials] == [3, 1]


def test_zero_counter_always_reports_zero() -> None:
    authenticator = SoftAuthenticator(counter="zero")
    _, registered = register(authenticator)
    for _ in range(3):
        request = authentication_options()
        assertion = authenticator.get(request, origin=ORIGIN)
        assert verify_get(assertion, request, registered.credential_public_key).new_sign_count == 0


@pytest.mark.parametrize(
    ("settings", "device_type", "backed_up"),
    [
        ({}, CredentialDeviceType.MULTI_DEVICE, True),
        ({"backed_up": False}, CredentialDeviceType.MULTI_DEVICE, False),
        ({"backup_eligible": False}, CredentialDeviceType.SINGLE_DEVICE, False),
    ],
)
def test_backup_flags_are_reported_as_device_type_and_backup_state(
    settings: dict[str, Any], device_type: CredentialDeviceType, backed_up: bool
) -> None:
    _, registered = register(SoftAuthenticator(**settings))
    assert registered.credential_device_type == device_type
    assert registered.credential_backed_up is backed_up


def test_android_origin_encodes_the_certificate_fingerprint() -> None:
    origin = android_origin(ANDROID_FINGERPRINT.lower())
    expected = base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=")
    assert origin == f"android:apk-key-hash:{expected}"
    with pytest.raises(ValueError):
        android_origin("AB:CD")


def test_android_origin_verifies_when_listed_as_expected_origin() -> None:
    origin = android_origin(ANDROID_FINGERPRINT)
    authenticator = SoftAuthenticator()
    options = registration_options()
    response = authenticator.create(options, origin=origin)
    registered = verify_create(response, options, expected_origin=[ORIGIN, origin])

    request = authentication_options()
    assertion = authenticator.get(request, origin=origin)
    verify_get(assertion, request, registered.credential_public_key, expected_origin=[origin])
    with pytest.raises(InvalidAuthenticationResponse):
        verify_get(assertion, request, registered.credential_public_key)


def test_rsa_credential_signs_repeated_assertions(
    rsa_passkey: SoftAuthenticator,
) -> None:
    public_key = rsa_passkey.credentials[0].cose_public_key
    for _ in range(2):
        request = authentication_options()
        verify_get(rsa_passkey.get(request, origin=ORIGIN), request, public_key)


LIES: list[dict[str, Any]] = [
    {"challenge": b64url(b"some other challenge")},
    {"rp_id": "evil.example"},
    {"user_present": False},
    {"client_data_type": "payment.get"},
]


@pytest.mark.parametrize("lie", LIES, ids=lambda lie: next(iter(lie)))
def test_registration_overrides_make_py_webauthn_reject(lie: dict[str, Any]) -> None:
    options = registration_options()
    response = SoftAuthenticator().create(options, origin=ORIGIN, **lie)
    with pytest.raises(InvalidRegistrationResponse):
        verify_create(response, options)


@pytest.mark.parametrize("lie", LIES, ids=lambda lie: next(iter(lie)))
def test_assertion_overrides_make_py_webauthn_reject(lie: dict[str, Any]) -> None:
    authenticator = SoftAuthenticator()
    _, registered = register(authenticator)
    request = authentication_options()
    assertion = authenticator.get(request, origin=ORIGIN, **lie)
    with pytest.raises(InvalidAuthenticationResponse):
        verify_get(assertion, request, registered.credential_public_key)


def test_wrong_origin_is_rejected() -> None:
    options = registration_options()
    response = SoftAuthenticator().create(options, origin="https://evil.example")
    with pytest.raises(InvalidRegistrationResponse):
        verify_create(response, options)


def test_user_verified_override_fails_required_verification() -> None:
    authenticator = SoftAuthenticator()
    options = registration_options()
    response = authenticator.create(options, origin=ORIGIN, user_verified=False)
    with pytest.raises(InvalidRegistrationResponse):
        verify_create(response, options, require_user_verification=True)
    registered = verify_create(response, options)
    assert registered.user_verified is False

    request = authentication_options()
    assertion = authenticator.get(request, origin=ORIGIN, user_verified=False)
    with pytest.raises(InvalidAuthenticationResponse):
        verify_get(
            assertion,
            request,
            registered.credential_public_key,
            require_user_verification=True,
        )


def test_sign_count_override_simulates_a_cloned_authenticator() -> None:
    authenticator = SoftAuthenticator(counter="increment")
    _, registered = register(authenticator)
    request = authentication_options()
    assertion = authenticator.get(request, origin=ORIGIN, sign_count=2)
    with pytest.raises(InvalidAuthenticationResponse):
        verify_get(assertion, request, registered.credential_public_key, current_sign_count=5)
    assert authenticator.credentials[0].sign_count == 1


def test_user_handle_override_replaces_or_omits_the_user_handle() -> None:
    authenticator = SoftAuthenticator()
    register(authenticator)
    request = authentication_options()
    other = authenticator.get(request, origin=ORIGIN, user_handle=b"someone else")
    assert base64url_to_bytes(other["response"]["userHandle"]) == b"someone else"
    assert (
        authenticator.get(request, origin=ORIGIN, user_handle=None)["response"]["userHandle"]
        is None
    )


def test_refuses_when_its_algorithm_is_not_offered() -> None:
    authenticator = SoftAuthenticator(algorithm="EdDSA")
    with pytest.raises(ValueError, match="pubKeyCredParams"):
        authenticator.create(registration_options(algs=[-7, -257]), origin=ORIGIN)
    assert authenticator.credentials == []


def test_refuses_to_register_again_when_it_holds_an_excluded_credential() -> None:
    authenticator = SoftAuthenticator()
    _, registered = register(authenticator)
    excluded = [PublicKeyCredentialDescriptor(id=registered.credential_id)]
    with pytest.raises(ValueError, match="excludeCredentials"):
        authenticator.create(registration_options(exclude_credentials=excluded), origin=ORIGIN)


def test_rp_id_defaults_to_the_origin_host_when_options_omit_it() -> None:
    authenticator = SoftAuthenticator()
    options = registration_options()
    del options["rp"]["id"]
    registered = verify_create(authenticator.create(options, origin=ORIGIN), options)
    request = authentication_options()
    del request["rpId"]
    verify_get(
        authenticator.get(request, origin=ORIGIN),
        request,
        registered.credential_public_key,
    )


def test_get_picks_explicit_then_first_allowed_then_most_recent_credential() -> None:
    authenticator = SoftAuthenticator()
    _, first = register(authenticator, user_id=b"first")
    _, second = register(authenticator, user_id=b"second")
    unknown = PublicKeyCredentialDescriptor(id=b"\x00" * 32)

    def used(**kwargs: Any) -> bytes:
        response = authenticator.get(
            authentication_options(**kwargs.pop("opts", {})), origin=ORIGIN, **kwargs
        )
        return base64url_to_bytes(response["rawId"])

    allow = [unknown, PublicKeyCredentialDescriptor(id=first.credential_id)]
    assert used() == second.credential_id
    assert used(opts={"allow_credentials": allow}) == first.credential_id
    assert (
        used(opts={"allow_credentials": allow}, credential_id=second.credential_id)
        == second.credential_id
    )
    with pytest.raises(ValueError):
        used(opts={"allow_credentials": [unknown]})


def test_get_only_uses_credentials_for_the_requested_rp() -> None:
    authenticator = SoftAuthenticator()
    register(authenticator)
    other_rp = options_to_json_dict(generate_authentication_options(rp_id="other.example"))
    with pytest.raises(ValueError, match=r"other\.example"):
        authenticator.get(other_rp, origin="https://other.example")
