"""Attestation policy end to end over HTTP: conveyance, AAGUID lists, trusted attestation
against a FIDO Metadata Service BLOB (made here with a test CA, no network), and its events."""

from __future__ import annotations

import copy
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import flask_passkey
from flask_passkey.errors import ConfigurationError
from flask_passkey.events import PasskeyEvent
from flask_passkey.testing import AttestationCA, PasskeyFlow, SoftAuthenticator
from tests.conftest import CUSTOM_DOMAIN, DB_CONNECTION, build_app, tenant_data, verify_jwt
from tests.mds import MetadataService, entry

TRUSTED = "hardware-keys"
VOUCHED = os.urandom(16)  # an AAGUID the test BLOB vouches for
REVOKED = os.urandom(16)
UNKNOWN = os.urandom(16)  # an AAGUID the BLOB does not know
SOFTWARE = os.urandom(16)  # vouched for, but its keys are not in hardware
TRUSTED_POLICY = {"conveyance": "direct", "require_trusted": True}


class Recorder:
    def __init__(self) -> None:
        self.events: list[PasskeyEvent] = []

    @flask_passkey.hookimpl
    def passkey_event(self, event: PasskeyEvent) -> None:
        self.events.append(event)

    def names(self) -> list[str]:
        return [e.name for e in self.events if e.name != "challenge_issued"]


@pytest.fixture(scope="module")
def vendor() -> AttestationCA:
    """The authenticator vendor whose attestation root the BLOB lists."""
    return AttestationCA("Test vendor attestation root")


@pytest.fixture(scope="module")
def mds() -> MetadataService:
    return MetadataService()


@pytest.fixture(scope="module")
def blob_files(
    tmp_path_factory: pytest.TempPathFactory, mds: MetadataService, vendor: AttestationCA
) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("mds")
    blob = mds.blob(
        [
            entry(VOUCHED, vendor),
            entry(REVOKED, vendor, status="REVOKED"),
            entry(SOFTWARE, vendor, key_protection=["software"]),
        ]
    )
    (folder / "blob.jwt").write_bytes(blob)
    (folder / "root.pem").write_bytes(mds.root_pem)
    return folder / "blob.jwt", folder / "root.pem"


def policy_tenant(**clients: dict[str, Any]) -> dict[str, Any]:
    """tenant_data() plus a connection requiring trusted attestation and a client per
    ``clients`` item (client_id -> its attestation override) on it."""
    tenant = tenant_data()
    tenant["connections"].append(
        {"name": TRUSTED, "required_identifiers": ["email"], "attestation": TRUSTED_POLICY}
    )
    tenant["clients"][0]["connections"].append(TRUSTED)  # spa
    tenant["clients"] += [
        {"client_id": client_id, "connections": [TRUSTED], "attestation": policy}
        for client_id, policy in clients.items()
    ]
    return tenant


def app_with(blob_files: tuple[Path, Path], tenant: dict[str, Any], recorder: Recorder) -> Flask:
    blob, root = blob_files
    return build_app(tenant=tenant, plugins=[recorder], mds_blob=str(blob), mds_root_cert=str(root))


def flow(app: Flask, authenticator: SoftAuthenticator, client_id: str = "spa") -> PasskeyFlow:
    return PasskeyFlow(
        app.test_client(), client_id=client_id, host=CUSTOM_DOMAIN, authenticator=authenticator
    )


def sign_up(passkey_flow: PasskeyFlow, realm: str = TRUSTED) -> Any:
    """Register and answer the creation options; the raw token response."""
    started = passkey_flow.register({"email": f"{uuid.uuid4().hex}@acme.test"}, realm=realm)
    assert started.status_code == 200, started.get_json()
    options = started.get_json()["authn_params_public_key"]
    credential = passkey_flow.authenticator.create(options, origin=passkey_flow.origin)
    return passkey_flow.token(started.get_json()["auth_session"], credential, realm=realm)


def hardware_key(vendor: AttestationCA, aaguid: bytes = VOUCHED) -> SoftAuthenticator:
    return SoftAuthenticator(
        attestation="packed", attestation_ca=vendor, aaguid=aaguid, backup_eligible=False
    )


# -- trusted attestation (the acceptance criterion) --------------------------------------------


@pytest.mark.parametrize(
    "authenticator",
    [
        SoftAuthenticator(attestation="none", aaguid=VOUCHED),
        SoftAuthenticator(attestation="packed", aaguid=VOUCHED),  # self attestation
    ],
    ids=["none", "packed self attestation"],
)
def test_a_trusted_policy_refuses_an_attestation_without_a_chain(
    blob_files: tuple[Path, Path], authenticator: SoftAuthenticator
) -> None:
    recorder = Recorder()
    app = app_with(blob_files, policy_tenant(), recorder)

    refused = sign_up(flow(app, authenticator))

    assert refused.status_code == 400
    assert refused.get_json()["error"] == "invalid_grant"
    assert recorder.names() == ["attestation_refused"]


def test_a_trusted_policy_accepts_a_chain_the_blob_vouches_for_and_claims_hwk(
    blob_files: tuple[Path, Path], vendor: AttestationCA
) -> None:
    recorder = Recorder()
    app = app_with(blob_files, policy_tenant(), recorder)
    passkey_flow = flow(app, hardware_key(vendor))

    answer = sign_up(passkey_flow)

    assert answer.status_code == 200, answer.get_json()
    claims = verify_jwt(passkey_flow.client, answer.get_json()["id_token"], audience="spa")
    assert "hwk" in claims["amr"]
    assert recorder.names() == ["signup_succeeded"]
    assert passkey_flow.sign_in(realm=TRUSTED)["access_token"]


def test_the_creation_options_ask_for_the_policys_conveyance(
    blob_files: tuple[Path, Path],
) -> None:
    tenant = policy_tenant(kiosk={"conveyance": "enterprise", "require_trusted": True})
    app = app_with(blob_files, tenant, Recorder())

    def conveyance(client_id: str, realm: str) -> str:
        started = flow(app, SoftAuthenticator(), client_id).register(
            {"email": "ann@acme.test"}, realm=realm
        )
        return str(started.get_json()["authn_params_public_key"]["attestation"])

    assert conveyance("spa", TRUSTED) == "direct"
    assert conveyance("kiosk", TRUSTED) == "enterprise"  # the client's override
    assert conveyance("spa", DB_CONNECTION) == "none"  # no policy: Auth0's default


def test_a_chain_from_another_ca_is_refused(blob_files: tuple[Path, Path]) -> None:
    recorder = Recorder()
    app = app_with(blob_files, policy_tenant(), recorder)
    impostor = hardware_key(AttestationCA("Not the vendor"))

    refused = sign_up(flow(app, impostor))

    assert refused.status_code == 400
    assert recorder.names() == ["attestation_refused"]
    assert "certificate chain" in refused.get_json()["error_description"]


def test_an_authenticator_the_blob_does_not_know_is_refused(
    blob_files: tuple[Path, Path], vendor: AttestationCA
) -> None:
    recorder = Recorder()
    app = app_with(blob_files, policy_tenant(), recorder)

    refused = sign_up(flow(app, hardware_key(vendor, UNKNOWN)))

    assert refused.status_code == 400
    assert recorder.names() == ["attestation_refused"]


@pytest.mark.parametrize("realm", [TRUSTED, DB_CONNECTION], ids=["trusted policy", "no policy"])
def test_a_revoked_authenticator_is_refused_whatever_the_policy(
    blob_files: tuple[Path, Path], vendor: AttestationCA, realm: str
) -> None:
    recorder = Recorder()
    app = app_with(blob_files, policy_tenant(), recorder)

    refused = sign_up(flow(app, hardware_key(vendor, REVOKED)), realm=realm)

    assert refused.status_code == 400
    assert "compromised" in refused.get_json()["error_description"]
    assert recorder.names() == ["attestation_refused"]


def test_a_trusted_attestation_of_a_software_key_does_not_claim_hwk(
    blob_files: tuple[Path, Path], vendor: AttestationCA
) -> None:
    app = app_with(blob_files, policy_tenant(), Recorder())
    passkey_flow = flow(app, hardware_key(vendor, SOFTWARE))

    answer = sign_up(passkey_flow)

    assert answer.status_code == 200, answer.get_json()
    claims = verify_jwt(passkey_flow.client, answer.get_json()["id_token"], audience="spa")
    assert "hwk" not in claims.get("amr", [])


def test_a_clients_override_replaces_the_connections_policy(
    blob_files: tuple[Path, Path],
) -> None:
    app = app_with(blob_files, policy_tenant(lenient={"conveyance": "none"}), Recorder())

    assert sign_up(flow(app, SoftAuthenticator(), "lenient")).status_code == 200
    assert sign_up(flow(app, SoftAuthenticator(), "spa")).status_code == 400


# -- AAGUID lists --------------------------------------------------------------------------------


def test_a_denied_aaguid_is_refused_with_its_own_event() -> None:
    recorder = Recorder()
    denied = os.urandom(16)
    tenant = tenant_data()
    realm = tenant["connections"][0]["name"]
    tenant["connections"][0]["attestation"] = {"denied_aaguids": [str(uuid.UUID(bytes=denied))]}
    app = build_app(tenant=tenant, plugins=[recorder])

    refused = sign_up(flow(app, SoftAuthenticator(aaguid=denied)), realm=realm)
    accepted = sign_up(flow(app, SoftAuthenticator()), realm=realm)

    assert refused.status_code == 400
    assert str(uuid.UUID(bytes=denied)) in refused.get_json()["error_description"]
    assert accepted.status_code == 200
    assert recorder.names() == ["aaguid_denied", "signup_succeeded"]


def test_only_allowed_aaguids_register_when_a_list_is_given() -> None:
    recorder = Recorder()
    allowed = os.urandom(16)
    tenant = tenant_data()
    realm = tenant["connections"][0]["name"]
    # Upper case and all: AAGUIDs are compared as UUIDs.
    tenant["connections"][0]["attestation"] = {
        "allowed_aaguids": [str(uuid.UUID(bytes=allowed)).upper()]
    }
    app = build_app(tenant=tenant, plugins=[recorder])

    assert sign_up(flow(app, SoftAuthenticator(aaguid=allowed)), realm=realm).status_code == 200
    assert sign_up(flow(app, SoftAuthenticator()), realm=realm).status_code == 400
    assert recorder.names() == ["signup_succeeded", "aaguid_denied"]


# -- configuration -------------------------------------------------------------------------------


def test_a_trusted_policy_without_a_blob_stops_the_app_at_start_up() -> None:
    with pytest.raises(ConfigurationError) as raised:
        build_app(tenant=policy_tenant())

    assert "PASSKEY_MDS_BLOB" in str(raised.value)
    assert f"connection {TRUSTED!r} has attestation.require_trusted" in raised.value.problems


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        ({"require_trusted": True}, "connections[4].attestation.conveyance"),
        ({"conveyance": "always"}, "connections[4].attestation.conveyance"),
        ({"denied_aaguids": ["yubikey"]}, "connections[4].attestation.denied_aaguids[0]"),
        ({"trusted": True}, "connections[4].attestation.trusted"),
    ],
)
def test_a_bad_policy_names_its_key(policy: dict[str, Any], problem: str) -> None:
    tenant = tenant_data()
    tenant["connections"].append({"name": "strict", "attestation": policy})

    with pytest.raises(ConfigurationError) as raised:
        build_app(tenant=tenant)

    assert any(line.startswith(problem) for line in raised.value.problems), raised.value.problems


def test_a_blob_that_does_not_verify_against_the_root_stops_the_app(
    blob_files: tuple[Path, Path], tmp_path: Path
) -> None:
    blob, _ = blob_files
    other_root = tmp_path / "other.pem"
    other_root.write_bytes(MetadataService().root_pem)

    with pytest.raises(ConfigurationError, match="does not verify against the root"):
        build_app(
            tenant=copy.deepcopy(policy_tenant()),
            mds_blob=str(blob),
            mds_root_cert=str(other_root),
        )


def test_the_blob_needs_its_root(blob_files: tuple[Path, Path]) -> None:
    with pytest.raises(ConfigurationError, match="go together"):
        build_app(mds_blob=str(blob_files[0]))


def test_an_attestation_ca_signs_packed_attestations_only() -> None:
    with pytest.raises(ValueError, match="packed"):
        SoftAuthenticator(attestation="none", attestation_ca=AttestationCA())
