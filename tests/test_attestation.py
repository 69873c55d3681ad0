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

from flask_passkey.cli.doctor import diagnose
from flask_passkey.errors import ConfigurationError
from flask_passkey.models import AttestationPolicy, Client
from flask_passkey.stores.sql import SqlStore
from flask_passkey.testing import AttestationCA, PasskeyFlow, SoftAuthenticator
from tests import events
from tests.apps import CUSTOM_DOMAIN, DB_CONNECTION, make_app, tenant_data
from tests.mds import MetadataService, entry
from tests.support import verify_jwt
from tests.test_cli import failed, ok, run
from tests.test_my_account import sign_up as my_account_sign_up

TRUSTED = "hardware-keys"
VOUCHED = os.urandom(16)  # an AAGUID the test BLOB vouches for
REVOKED = os.urandom(16)
UNKNOWN = os.urandom(16)  # an AAGUID the BLOB does not know
SOFTWARE = os.urandom(16)  # vouched for, but its keys are not in hardware
TRUSTED_POLICY = {"conveyance": "direct", "require_trusted": True}


class Recorder(events.Recorder):
    def names(self) -> list[str]:
        return [name for name in super().names() if name != "challenge_issued"]


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
    return make_app(tenant=tenant, plugins=[recorder], mds_blob=str(blob), mds_root_cert=str(root))


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
    again = passkey_flow.sign_in(realm=TRUSTED)
    assert "hwk" in verify_jwt(passkey_flow.client, again["id_token"], audience="spa")["amr"]


def test_a_loaded_blob_names_the_authenticators_it_describes(
    blob_files: tuple[Path, Path], vendor: AttestationCA
) -> None:
    app = app_with(blob_files, policy_tenant(), Recorder())
    names = app.extensions["passkey"].authenticators

    assert names.authenticator_name(str(uuid.UUID(bytes=VOUCHED))).name == "Test Key"
    assert names.authenticator_name(str(uuid.uuid4())) is None


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
    again = passkey_flow.sign_in(realm=TRUSTED)
    assert "hwk" not in verify_jwt(passkey_flow.client, again["id_token"], audience="spa").get(
        "amr", []
    )


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
    app = make_app(tenant=tenant, plugins=[recorder])

    refused = sign_up(flow(app, SoftAuthenticator(aaguid=denied)), realm=realm)
    accepted = sign_up(flow(app, SoftAuthenticator()), realm=realm)

    assert refused.status_code == 400
    assert str(uuid.UUID(bytes=denied)) in refused.get_json()["error_description"]
    assert accepted.status_code == 200
    assert recorder.names() == ["aaguid_denied", "signup_succeeded"]


def test_a_response_that_does_not_verify_is_rejected_before_its_aaguid_is_judged() -> None:
    recorder = Recorder()
    denied = os.urandom(16)
    tenant = tenant_data()
    tenant["connections"][0]["attestation"] = {"denied_aaguids": [str(uuid.UUID(bytes=denied))]}
    passkey_flow = flow(
        make_app(tenant=tenant, plugins=[recorder]), SoftAuthenticator(aaguid=denied)
    )
    started = passkey_flow.register({"email": "ann@acme.test"}).get_json()
    forged = passkey_flow.authenticator.create(
        started["authn_params_public_key"], origin=passkey_flow.origin, challenge="Zm9yZ2Vk"
    )

    assert passkey_flow.token(started["auth_session"], forged).status_code == 400
    assert recorder.names() == ["request_rejected"]


def test_only_allowed_aaguids_register_when_a_list_is_given() -> None:
    recorder = Recorder()
    allowed = os.urandom(16)
    tenant = tenant_data()
    realm = tenant["connections"][0]["name"]
    # Upper case and all: AAGUIDs are compared as UUIDs.
    tenant["connections"][0]["attestation"] = {
        "allowed_aaguids": [str(uuid.UUID(bytes=allowed)).upper()]
    }
    app = make_app(tenant=tenant, plugins=[recorder])

    assert sign_up(flow(app, SoftAuthenticator(aaguid=allowed)), realm=realm).status_code == 200
    assert sign_up(flow(app, SoftAuthenticator()), realm=realm).status_code == 400
    assert recorder.names() == ["signup_succeeded", "aaguid_denied"]


# -- configuration -------------------------------------------------------------------------------


def test_a_trusted_policy_without_a_blob_stops_the_app_at_start_up() -> None:
    with pytest.raises(ConfigurationError) as raised:
        make_app(tenant=policy_tenant())

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
        make_app(tenant=tenant)

    assert any(line.startswith(problem) for line in raised.value.problems), raised.value.problems


def test_a_blob_that_does_not_verify_against_the_root_stops_the_app(
    blob_files: tuple[Path, Path], tmp_path: Path
) -> None:
    blob, _ = blob_files
    other_root = tmp_path / "other.pem"
    other_root.write_bytes(MetadataService().root_pem)

    with pytest.raises(ConfigurationError, match="does not verify against the root"):
        make_app(
            tenant=copy.deepcopy(policy_tenant()),
            mds_blob=str(blob),
            mds_root_cert=str(other_root),
        )


def test_the_blob_needs_its_root(blob_files: tuple[Path, Path]) -> None:
    with pytest.raises(ConfigurationError, match="go together"):
        make_app(mds_blob=str(blob_files[0]))


def test_an_attestation_ca_signs_packed_attestations_only() -> None:
    with pytest.raises(ValueError, match="packed"):
        SoftAuthenticator(attestation="none", attestation_ca=AttestationCA())


# -- flask passkey mds -------------------------------------------------------------------------


def mds_app(tmp_path: Path, mds: MetadataService, blob: bytes) -> Flask:
    (tmp_path / "blob.jwt").write_bytes(blob)
    (tmp_path / "root.pem").write_bytes(mds.root_pem)
    return make_app(
        tenant=policy_tenant(),
        mds_blob=str(tmp_path / "blob.jwt"),
        mds_root_cert=str(tmp_path / "root.pem"),
    )


def test_mds_info_shows_what_is_loaded_and_when_it_expires(
    tmp_path: Path, mds: MetadataService, vendor: AttestationCA
) -> None:
    blob = mds.blob(
        [entry(VOUCHED, vendor), entry(REVOKED, vendor, status="REVOKED")],
        number=12,
        next_update="2020-05-01",
    )

    shown = ok(run(mds_app(tmp_path, mds, blob), "mds", "info"))

    assert f"BLOB:        {tmp_path / 'blob.jwt'}" in shown
    assert "number:      12" in shown
    assert "next update: 2020-05-01 (expired: download the current BLOB)" in shown
    assert "authenticators: 2 (1 refused as compromised)" in shown


def test_mds_info_without_a_blob_says_how_to_set_one() -> None:
    assert "set PASSKEY_MDS_BLOB" in ok(run(make_app(), "mds", "info"))


def test_mds_load_replaces_the_blob_with_a_newer_one_that_verifies(
    tmp_path: Path, mds: MetadataService, vendor: AttestationCA
) -> None:
    app = mds_app(tmp_path, mds, mds.blob([entry(VOUCHED, vendor)], number=3))
    newer = mds.blob([entry(VOUCHED, vendor), entry(UNKNOWN, vendor)], number=4)
    (tmp_path / "download.jwt").write_bytes(newer)

    shown = ok(run(app, "mds", "load", str(tmp_path / "download.jwt")))

    assert "number:      4" in shown
    assert (tmp_path / "blob.jwt").read_bytes() == newer
    restarted = mds_app(tmp_path, mds, newer)
    assert "authenticators: 2" in ok(run(restarted, "mds", "info"))


@pytest.mark.parametrize("problem", ["forged", "older"])
def test_mds_load_keeps_the_blob_when_the_new_one_is_forged_or_older(
    tmp_path: Path, mds: MetadataService, vendor: AttestationCA, problem: str
) -> None:
    current = mds.blob([entry(VOUCHED, vendor)], number=5)
    app = mds_app(tmp_path, mds, current)
    signer = MetadataService() if problem == "forged" else mds
    (tmp_path / "download.jwt").write_bytes(signer.blob([], number=4 if problem == "older" else 9))

    error = failed(run(app, "mds", "load", str(tmp_path / "download.jwt")))

    assert ("does not verify" if problem == "forged" else "older than the loaded 5") in error
    assert (tmp_path / "blob.jwt").read_bytes() == current


def test_a_stored_client_has_no_attestation_policy_of_its_own(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'passkey.sqlite3'}")
    try:
        with pytest.raises(ValueError, match="set it on the connection"):
            store.add_client(Client("kiosk", attestation=AttestationPolicy(conveyance="direct")))
        store.add_client(Client("kiosk"))
        assert store.list_clients() == [Client("kiosk")]
    finally:
        store.close()


def test_the_policy_applies_to_a_passkey_added_through_my_account() -> None:
    recorder = Recorder()
    denied = os.urandom(16)
    tenant = tenant_data()
    tenant["connections"][0]["attestation"] = {"denied_aaguids": [str(uuid.UUID(bytes=denied))]}
    account = my_account_sign_up(make_app(tenant=tenant, plugins=[recorder]))

    refused = account.enroll(SoftAuthenticator(aaguid=denied))

    assert refused.status_code == 400
    assert refused.get_json()["error"] == "invalid_request"  # My Account's code for a bad body
    assert len(account.credentials()) == 1  # the sign-up's passkey only
    assert recorder.names()[-1] == "aaguid_denied"
    assert account.enroll(SoftAuthenticator()).status_code in (200, 201)


def test_the_doctor_says_when_the_blob_is_past_its_next_update(
    tmp_path: Path, mds: MetadataService, vendor: AttestationCA
) -> None:
    current = mds_app(tmp_path, mds, mds.blob([entry(VOUCHED, vendor)], next_update="2999-01-01"))
    stale = mds_app(tmp_path, mds, mds.blob([entry(VOUCHED, vendor)], next_update="2020-05-01"))

    def metadata_problems(app: Flask) -> list[str]:
        found = diagnose(app.extensions["passkey"], environ={}, workers=1)
        return [str(problem) for problem in found if "metadata BLOB" in str(problem)]

    assert metadata_problems(current) == []
    assert metadata_problems(stale) == [
        f"The FIDO metadata BLOB ({tmp_path / 'blob.jwt'}) was due for an update on 2020-05-01: "
        "newly revoked or compromised authenticators are not in it. Download the current BLOB "
        "and run `flask passkey mds load <file>`, then restart."
    ]
