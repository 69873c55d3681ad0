"""The contract every session store, user store and limiter storage
(:class:`~flask_passkey.stores.limit_counters.RememberingStorage`) must keep, as reusable pytest
test classes.

Subclass a contract in a test module (name the subclass ``Test...``) and give it a ``store``
fixture that returns a new, empty store::

    from flask_passkey.testing.store_contract import SessionStoreContract

    class TestMySessionStore(SessionStoreContract):
        @pytest.fixture
        def store(self) -> MySessionStore:
            return MySessionStore(...)

One class may inherit both contracts when one object implements both protocols. The tests
check every promise of :class:`~flask_passkey.stores.sessions.SessionStore` and
:class:`~flask_passkey.stores.users.UserStore`, including those that only show under concurrency
(single-use takes, the sign-count compare-and-set, racing sign-ups), so the store must be safe
to call from several threads at once. The ``new_*`` factories and :func:`race` help with tests
of a store's own. Needs pytest (the ``dev`` extra).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from flask_passkey.models import Credential, Identifier, User
from flask_passkey.stores import limit_counters
from flask_passkey.stores.limit_counters import RememberingStorage, forget_hits
from flask_passkey.stores.sessions import AuthSession, SessionStore
from flask_passkey.stores.users import (
    CredentialTaken,
    IdentifierTaken,
    RefreshGrant,
    SigningKey,
    UserStore,
)

__all__ = [
    "NOW",
    "LimitStorageContract",
    "SessionStoreContract",
    "UserStoreContract",
    "new_credential",
    "new_grant",
    "new_session",
    "new_user",
    "race",
]

#: The callers' clock in these tests: any fixed epoch time works.
NOW = 1_700_000_000.0
CONNECTION = "Username-Password-Authentication"
T = TypeVar("T")


def race(threads: int, action: Callable[[], T]) -> list[T | Exception]:
    """Run ``action`` on ``threads`` threads released at the same moment; each thread's
    result or exception, in no particular order."""
    barrier = threading.Barrier(threads)
    results: list[T | Exception] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            result: T | Exception = action()
        except Exception as error:
            result = error
        with lock:
            results.append(result)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def new_session(**overrides: Any) -> AuthSession:
    """A login session expiring a minute after NOW."""
    values: dict[str, Any] = {
        "id": secrets.token_urlsafe(32),
        "operation": "login",
        "challenge": secrets.token_bytes(32),
        "client_id": "spa",
        "connection": CONNECTION,
        "organization_id": None,
        "rp_id": "login.acme.test",
        "origin": "https://login.acme.test",
        "expires_at": NOW + 60,
    }
    return AuthSession(**{**values, **overrides})


def new_user(**overrides: Any) -> User:
    """A user with a unique email (and no phone number or username)."""
    user_id = secrets.token_hex(8)
    values: dict[str, Any] = {
        "id": f"auth0|{user_id}",
        "connection": CONNECTION,
        "user_handle": secrets.token_bytes(64),
        "created_at": NOW,
        "email": f"{user_id}@acme.test",
    }
    return User(**{**values, **overrides})


def new_credential(user: User, **overrides: Any) -> Credential:
    values: dict[str, Any] = {
        "id": secrets.token_bytes(32),
        "user_id": user.id,
        "public_key": secrets.token_bytes(77),
        "sign_count": 0,
        "rp_id": "login.acme.test",
        "created_at": user.created_at,
    }
    return Credential(**{**values, **overrides})


def new_grant(user: User, **overrides: Any) -> RefreshGrant:
    values: dict[str, Any] = {
        "user_id": user.id,
        "client_id": "spa",
        "scope": ("openid", "profile", "offline_access"),
        "audience": None,
        "organization_id": None,
        "expires_at": NOW + 3600,
        "auth_time": NOW - 60,
    }
    return RefreshGrant(**{**values, **overrides})


class SessionStoreContract:
    """The :class:`~flask_passkey.stores.sessions.SessionStore` contract; needs a ``store``
    fixture."""

    def test_login_session_comes_back_whole(self, store: SessionStore) -> None:
        session = new_session(organization_id="org_acme")
        store.put(session, now=NOW)
        assert store.take(session.id, now=NOW) == session

    def test_signup_session_comes_back_with_handle_profile_and_metadata(
        self, store: SessionStore
    ) -> None:
        session = new_session(
            operation="signup",
            user_handle=secrets.token_bytes(64),
            user_profile={"email": "jane@acme.test", "name": "Jane Doe ✓"},
            user_metadata={"plan": "pro", "locale": "fr"},
        )
        store.put(session, now=NOW)
        assert store.take(session.id, now=NOW) == session

    def test_session_can_be_taken_once(self, store: SessionStore) -> None:
        session = new_session()
        store.put(session, now=NOW)
        assert store.take(session.id, now=NOW) == session
        assert store.take(session.id, now=NOW) is None

    def test_unknown_session_is_none(self, store: SessionStore) -> None:
        assert store.take(secrets.token_urlsafe(32), now=NOW) is None

    def test_session_is_kept_until_it_expires(self, store: SessionStore) -> None:
        session = new_session(expires_at=NOW + 60)
        store.put(session, now=NOW)
        assert store.take(session.id, now=NOW + 59.9) == session

    @pytest.mark.parametrize("late", [0.0, 0.5, 3600.0])
    def test_expired_session_is_none(self, store: SessionStore, late: float) -> None:
        session = new_session(expires_at=NOW + 60)
        store.put(session, now=NOW)
        assert store.take(session.id, now=NOW + 60 + late) is None

    def test_taking_one_session_leaves_the_others(self, store: SessionStore) -> None:
        first, second = new_session(), new_session()
        store.put(first, now=NOW)
        store.put(second, now=NOW)
        assert store.take(first.id, now=NOW) == first
        assert store.take(second.id, now=NOW) == second

    def test_expired_sessions_do_not_disturb_new_ones(self, store: SessionStore) -> None:
        for _ in range(250):
            store.put(new_session(expires_at=NOW + 1), now=NOW)
        later = NOW + 120
        fresh = [new_session(expires_at=later + 60) for _ in range(250)]
        for session in fresh:
            store.put(session, now=later)
        assert [store.take(s.id, now=later) for s in fresh] == fresh

    def test_concurrent_takes_have_exactly_one_winner(self, store: SessionStore) -> None:
        session = new_session()
        store.put(session, now=NOW)
        results = race(20, lambda: store.take(session.id, now=NOW))
        assert results.count(session) == 1
        assert results.count(None) == 19

    # -- markers (put-if-absent) -------------------------------------------------------------

    def test_marker_is_put_once_while_it_lives(self, store: SessionStore) -> None:
        key = secrets.token_hex(16)
        assert store.put_marker(key, expires_at=NOW + 60, now=NOW) is True
        assert store.put_marker(key, expires_at=NOW + 60, now=NOW) is False
        assert store.put_marker(key, expires_at=NOW + 120, now=NOW + 59) is False

    def test_expired_marker_can_be_put_again(self, store: SessionStore) -> None:
        # On the real clock: a store may leave expiry to its backend (a Redis TTL).
        key = secrets.token_hex(16)
        assert store.put_marker(key, expires_at=time.time() + 0.2, now=time.time()) is True
        time.sleep(0.3)
        assert store.put_marker(key, expires_at=time.time() + 60, now=time.time()) is True
        assert store.put_marker(key, expires_at=time.time() + 60, now=time.time()) is False

    def test_markers_are_per_key_and_apart_from_sessions(self, store: SessionStore) -> None:
        session = new_session()
        assert store.put_marker(session.id, expires_at=NOW + 60, now=NOW) is True
        assert store.put_marker(secrets.token_hex(16), expires_at=NOW + 60, now=NOW) is True
        assert store.take(session.id, now=NOW) is None
        store.put(session, now=NOW)
        assert store.put_marker(session.id, expires_at=NOW + 60, now=NOW) is False
        assert store.take(session.id, now=NOW) == session

    def test_concurrent_markers_have_exactly_one_winner(self, store: SessionStore) -> None:
        key = secrets.token_hex(16)
        results = race(20, lambda: store.put_marker(key, expires_at=NOW + 60, now=NOW))
        assert results.count(True) == 1
        assert results.count(False) == 19


class UserStoreContract:
    """The :class:`~flask_passkey.stores.users.UserStore` contract; needs a ``store`` fixture."""

    # -- create_user and lookups ------------------------------------------------------------

    def test_created_user_comes_back_whole(self, store: UserStore) -> None:
        user = new_user(
            phone_number="+14155550100",
            username="jane_doe",
            profile={"name": "Jane Doe ✓", "given_name": "Jane", "picture": "https://x/p.png"},
            user_metadata={"plan": "pro"},
        )
        store.create_user(user, new_credential(user), organization_id=None)
        assert store.get_user(user.id) == user

    def test_user_without_optional_identifiers_comes_back_whole(self, store: UserStore) -> None:
        user = new_user(email=None, username="only_a_username")
        store.create_user(user, new_credential(user), organization_id=None)
        assert store.get_user(user.id) == user

    def test_created_credential_comes_back_whole(self, store: UserStore) -> None:
        user = new_user()
        credential = new_credential(
            user,
            id=bytes(range(256)),
            public_key=b"\x00\xa5\x01\x02\x03&",
            sign_count=2**32 - 1,
            backup_eligible=True,
            backed_up=True,
            transports=("internal", "hybrid"),
            aaguid="ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4",
            name="Jane's phone",
            created_at=NOW + 0.123456,
            hardware_attested=True,
        )
        store.create_user(user, credential, organization_id=None)
        assert store.get_credential(credential.id) == credential

    @pytest.mark.parametrize("kind", ["email", "phone_number", "username"])
    def test_user_is_found_by_each_identifier(self, store: UserStore, kind: Identifier) -> None:
        user = new_user(phone_number="+14155550101", username=f"u{secrets.token_hex(4)}")
        store.create_user(user, new_credential(user), organization_id=None)
        value = user.identifier(kind)
        assert value is not None
        assert store.find_user(connection=CONNECTION, kind=kind, value=value) == user

    def test_find_user_is_scoped_to_the_connection_and_kind(self, store: UserStore) -> None:
        user = new_user(username="jane")
        store.create_user(user, new_credential(user), organization_id=None)
        assert user.email is not None
        assert store.find_user(connection="partners", kind="email", value=user.email) is None
        assert store.find_user(connection=CONNECTION, kind="username", value=user.email) is None

    def test_unknown_ids_are_none(self, store: UserStore) -> None:
        assert store.get_user("auth0|nobody") is None
        assert store.get_credential(secrets.token_bytes(32)) is None
        assert store.find_user(connection=CONNECTION, kind="email", value="no@acme.test") is None

    # -- conflicts ----------------------------------------------------------------------------

    @pytest.mark.parametrize("kind", ["email", "phone_number", "username"])
    def test_taken_identifier_is_refused_and_nothing_is_written(
        self, store: UserStore, kind: Identifier
    ) -> None:
        first = new_user(phone_number="+14155550102", username="jane")
        store.create_user(first, new_credential(first), organization_id=None)
        second = new_user(**{kind: first.identifier(kind)})
        credential = new_credential(second)

        with pytest.raises(IdentifierTaken) as raised:
            store.create_user(second, credential, organization_id="org_acme")

        assert raised.value.kind == kind
        self.assert_nothing_written(store, second, credential)
        assert store.get_user(first.id) == first

    def test_identifiers_are_unique_per_connection_only(self, store: UserStore) -> None:
        first = new_user(username="jane")
        other = new_user(connection="partners", email=first.email, username="jane")
        store.create_user(first, new_credential(first), organization_id=None)
        store.create_user(other, new_credential(other), organization_id=None)
        assert first.email is not None
        assert store.find_user(connection="partners", kind="email", value=first.email) == other
        assert store.find_user(connection=CONNECTION, kind="email", value=first.email) == first

    def test_taken_credential_is_refused_and_nothing_is_written(self, store: UserStore) -> None:
        first = new_user()
        credential = new_credential(first)
        store.create_user(first, credential, organization_id=None)
        second = new_user()
        duplicate = new_credential(second, id=credential.id)

        with pytest.raises(CredentialTaken):
            store.create_user(second, duplicate, organization_id="org_acme")

        assert store.get_user(second.id) is None
        assert second.email is not None
        assert store.find_user(connection=CONNECTION, kind="email", value=second.email) is None
        assert not store.is_member(organization_id="org_acme", user_id=second.id)
        assert store.get_credential(credential.id) == credential

    def test_concurrent_signups_with_one_email_have_exactly_one_winner(
        self, store: UserStore
    ) -> None:
        email = f"{secrets.token_hex(8)}@acme.test"

        def sign_up() -> None:
            user = new_user(email=email)
            store.create_user(user, new_credential(user), organization_id=None)

        results = race(10, sign_up)
        assert results.count(None) == 1
        assert all(isinstance(r, IdentifierTaken) and r.kind == "email" for r in results if r)
        winner = store.find_user(connection=CONNECTION, kind="email", value=email)
        assert winner is not None
        assert len(store.list_credentials(winner.id)) == 1

    @staticmethod
    def assert_nothing_written(store: UserStore, user: User, credential: Credential) -> None:
        assert store.get_user(user.id) is None
        assert store.get_credential(credential.id) is None
        assert not store.is_member(organization_id="org_acme", user_id=user.id)

    # -- record_login -------------------------------------------------------------------------

    def test_login_stores_counter_backup_state_and_time(self, store: UserStore) -> None:
        user = new_user()
        credential = new_credential(user, sign_count=5, backup_eligible=True)
        store.create_user(user, credential, organization_id=None)

        assert store.record_login(
            credential.id, expected_sign_count=5, sign_count=6, backed_up=True, used_at=NOW + 9
        )

        assert store.get_credential(credential.id) == replace(
            credential, sign_count=6, backed_up=True, last_used_at=NOW + 9
        )

    def test_login_with_a_stale_counter_changes_nothing(self, store: UserStore) -> None:
        user = new_user()
        credential = new_credential(user, sign_count=7)
        store.create_user(user, credential, organization_id=None)

        assert not store.record_login(
            credential.id, expected_sign_count=6, sign_count=8, backed_up=True, used_at=NOW + 9
        )

        assert store.get_credential(credential.id) == credential

    def test_login_of_an_unknown_credential_is_false(self, store: UserStore) -> None:
        assert not store.record_login(
            secrets.token_bytes(32),
            expected_sign_count=0,
            sign_count=1,
            backed_up=False,
            used_at=NOW,
        )

    def test_counterless_authenticators_can_log_in_again(self, store: UserStore) -> None:
        user = new_user()
        credential = new_credential(user, sign_count=0)
        store.create_user(user, credential, organization_id=None)
        for used_at in (NOW + 1, NOW + 2):
            assert store.record_login(
                credential.id,
                expected_sign_count=0,
                sign_count=0,
                backed_up=False,
                used_at=used_at,
            )
        stored = store.get_credential(credential.id)
        assert stored is not None
        assert stored.last_used_at == NOW + 2

    def test_concurrent_logins_with_one_counter_have_exactly_one_winner(
        self, store: UserStore
    ) -> None:
        user = new_user()
        credential = new_credential(user, sign_count=3)
        store.create_user(user, credential, organization_id=None)

        results = race(
            10,
            lambda: store.record_login(
                credential.id,
                expected_sign_count=3,
                sign_count=4,
                backed_up=False,
                used_at=NOW,
            ),
        )

        assert results.count(True) == 1
        assert results.count(False) == 9

    # -- credentials of a user ----------------------------------------------------------------

    def test_credentials_are_listed_oldest_first_per_user(self, store: UserStore) -> None:
        user, other = new_user(), new_user()
        first = new_credential(user, created_at=NOW)
        store.create_user(user, first, organization_id=None)
        store.create_user(other, new_credential(other), organization_id=None)
        third = new_credential(user, created_at=NOW + 20, transports=("usb",))
        second = new_credential(user, created_at=NOW + 10)
        store.add_credential(third)
        store.add_credential(second)

        assert store.list_credentials(user.id) == [first, second, third]
        assert store.list_credentials("auth0|nobody") == []

    def test_added_credential_comes_back_whole(self, store: UserStore) -> None:
        user = new_user()
        store.create_user(user, new_credential(user), organization_id=None)
        added = new_credential(user, transports=("nfc", "usb"), name="key", created_at=NOW + 1)
        store.add_credential(added)
        assert store.get_credential(added.id) == added

    def test_adding_a_registered_credential_is_refused(self, store: UserStore) -> None:
        user, other = new_user(), new_user()
        credential = new_credential(user)
        store.create_user(user, credential, organization_id=None)
        store.create_user(other, new_credential(other), organization_id=None)

        with pytest.raises(CredentialTaken):
            store.add_credential(new_credential(other, id=credential.id))

        assert store.get_credential(credential.id) == credential
        assert len(store.list_credentials(other.id)) == 1

    def test_rename_credential(self, store: UserStore) -> None:
        user = new_user()
        credential = new_credential(user, name="old")
        store.create_user(user, credential, organization_id=None)

        assert store.rename_credential(user_id=user.id, credential_id=credential.id, name="new")

        assert store.get_credential(credential.id) == replace(credential, name="new")

    def test_rename_of_someone_elses_or_unknown_credential_is_false(self, store: UserStore) -> None:
        user, other = new_user(), new_user()
        credential = new_credential(user, name="mine")
        store.create_user(user, credential, organization_id=None)
        store.create_user(other, new_credential(other), organization_id=None)

        assert not store.rename_credential(
            user_id=other.id, credential_id=credential.id, name="stolen"
        )
        assert not store.rename_credential(
            user_id=user.id, credential_id=secrets.token_bytes(32), name="x"
        )
        assert store.get_credential(credential.id) == credential

    def test_delete_credential(self, store: UserStore) -> None:
        user = new_user()
        first, second = new_credential(user), new_credential(user, created_at=NOW + 1)
        store.create_user(user, first, organization_id=None)
        store.add_credential(second)

        assert store.delete_credential(user_id=user.id, credential_id=first.id)

        assert store.get_credential(first.id) is None
        assert store.list_credentials(user.id) == [second]
        assert not store.delete_credential(user_id=user.id, credential_id=first.id)

    def test_delete_of_someone_elses_credential_is_false(self, store: UserStore) -> None:
        user, other = new_user(), new_user()
        credential = new_credential(user)
        store.create_user(user, credential, organization_id=None)
        store.create_user(other, new_credential(other), organization_id=None)

        assert not store.delete_credential(user_id=other.id, credential_id=credential.id)

        assert store.get_credential(credential.id) == credential

    # -- users for operators ------------------------------------------------------------------

    def test_users_are_listed_by_creation_time(self, store: UserStore) -> None:
        created = [new_user(created_at=NOW + offset) for offset in (3, 1, 2, 0)]
        for user in created:
            store.create_user(user, new_credential(user), organization_id=None)
        oldest_first = sorted(created, key=lambda u: u.created_at)

        assert store.list_users() == oldest_first
        assert store.list_users(limit=2) == oldest_first[:2]
        assert store.list_users(limit=2, offset=1) == oldest_first[1:3]
        assert store.list_users(offset=4) == []

    # -- organizations --------------------------------------------------------------------------

    def test_signup_in_an_organization_makes_a_member(self, store: UserStore) -> None:
        user = new_user()
        store.create_user(user, new_credential(user), organization_id="org_acme")
        assert store.is_member(organization_id="org_acme", user_id=user.id)
        assert not store.is_member(organization_id="org_other", user_id=user.id)

    def test_add_member_is_idempotent_and_per_organization(self, store: UserStore) -> None:
        user, other = new_user(), new_user()
        store.create_user(user, new_credential(user), organization_id=None)
        store.create_user(other, new_credential(other), organization_id=None)
        assert not store.is_member(organization_id="org_acme", user_id=user.id)

        store.add_member(organization_id="org_acme", user_id=user.id)
        store.add_member(organization_id="org_acme", user_id=user.id)

        assert store.is_member(organization_id="org_acme", user_id=user.id)
        assert not store.is_member(organization_id="org_acme", user_id=other.id)
        assert not store.is_member(organization_id="org_other", user_id=user.id)

    # -- refresh tokens -------------------------------------------------------------------------

    def test_refresh_token_comes_back_whole_until_used(self, store: UserStore) -> None:
        user = new_user()
        store.create_user(user, new_credential(user), organization_id=None)
        grant = new_grant(
            user,
            audience="https://api.acme.test",
            organization_id="org_acme",
            credential_id=b"\x01passkey",
            idle_expires_at=NOW + 600,
        )
        token_hash = secrets.token_hex(32)
        store.put_refresh_token(token_hash, grant)

        assert store.get_refresh_token(token_hash) == grant
        assert store.get_refresh_token(token_hash) == grant  # reading spends nothing
        assert store.use_refresh_token(token_hash, now=NOW)
        assert store.get_refresh_token(token_hash) == replace(grant, used_at=NOW)
        assert not store.use_refresh_token(token_hash, now=NOW + 1)
        assert store.get_refresh_token(token_hash) == replace(grant, used_at=NOW)

    def test_unknown_refresh_token_is_none_and_cannot_be_used(self, store: UserStore) -> None:
        token_hash = secrets.token_hex(32)
        assert store.get_refresh_token(token_hash) is None
        assert not store.use_refresh_token(token_hash, now=NOW)

    def test_expired_refresh_token_still_reads_back(self, store: UserStore) -> None:
        # The grant decides about expiry (RefreshGrant.expired); the store keeps spent and
        # expired tokens until their family expires, for reuse detection.
        user = new_user()
        store.create_user(user, new_credential(user), organization_id=None)
        grant = new_grant(user, expires_at=NOW + 10, idle_expires_at=NOW + 5)
        token_hash = secrets.token_hex(32)
        store.put_refresh_token(token_hash, grant)

        found = store.get_refresh_token(token_hash)
        assert found == grant
        assert found is not None and found.expired(NOW + 5) and not found.expired(NOW + 4)

    def test_concurrent_refresh_token_uses_have_exactly_one_winner(self, store: UserStore) -> None:
        user = new_user()
        store.create_user(user, new_credential(user), organization_id=None)
        token_hash = secrets.token_hex(32)
        store.put_refresh_token(token_hash, new_grant(user))

        results = race(10, lambda: store.use_refresh_token(token_hash, now=NOW))

        assert results.count(True) == 1
        assert results.count(False) == 9

    def test_revoking_a_family_ends_all_its_tokens_and_only_them(self, store: UserStore) -> None:
        user = new_user()
        store.create_user(user, new_credential(user), organization_id=None)
        first = new_grant(user)
        family = {secrets.token_hex(32): first, secrets.token_hex(32): replace(first, used_at=NOW)}
        other_hash = secrets.token_hex(32)
        other = new_grant(user)
        for token_hash, grant in family.items():
            store.put_refresh_token(token_hash, grant)
        store.put_refresh_token(other_hash, other)

        store.revoke_refresh_token_family(first.family_id, expires_at=first.expires_at)
        store.revoke_refresh_token_family(first.family_id, expires_at=first.expires_at)

        for token_hash in family:
            assert store.get_refresh_token(token_hash) is None
            assert not store.use_refresh_token(token_hash, now=NOW)
        assert store.get_refresh_token(other_hash) == other

    def test_token_put_into_a_revoked_family_is_dead(self, store: UserStore) -> None:
        # A rotation that loses the race with its family's revocation puts its new token after
        # the revocation: that token must not work.
        user = new_user()
        store.create_user(user, new_credential(user), organization_id=None)
        grant = new_grant(user)
        store.revoke_refresh_token_family(grant.family_id, expires_at=grant.expires_at)
        token_hash = secrets.token_hex(32)

        store.put_refresh_token(token_hash, grant)

        assert store.get_refresh_token(token_hash) is None
        assert not store.use_refresh_token(token_hash, now=NOW)

    # -- signing keys -------------------------------------------------------------------------

    def test_signing_keys_are_kept_oldest_first(self, store: UserStore) -> None:
        assert store.signing_keys() == []
        keys = [
            SigningKey(kid=f"kid-{n}", private_jwk=f'{{"kty":"OKP","d":"{n}"}}', created_at=NOW + n)
            for n in range(3)
        ]
        for key in keys:
            store.add_signing_key(key)

        stored = store.signing_keys()

        assert stored == keys
        assert [k.created_at for k in stored] == [k.created_at for k in keys]

    def test_only_the_first_signing_key_is_added_when_none_is_there(self, store: UserStore) -> None:
        first, second = (
            SigningKey(kid=f"first-{n}", private_jwk=f'{{"kty":"OKP","d":"{n}"}}', created_at=NOW)
            for n in range(2)
        )

        assert store.add_first_signing_key(first) is True
        assert store.add_first_signing_key(second) is False

        assert store.signing_keys() == [first]


class LimitStorageContract:
    """What a :class:`~flask_passkey.stores.limit_counters.RememberingStorage` promises: fixed
    windows counted atomically, ended windows starting over, and reads of a counter this thread
    has just hit answered from the hit until
    :func:`~flask_passkey.stores.limit_counters.forget_hits`.

    The ``storage`` fixture returns a new storage whose counters are all empty.
    """

    KEY = "LIMITER/192.0.2.1/passkey.challenge/5/1/minute"

    @pytest.fixture(autouse=True)
    def _forget_hits(self) -> Any:
        forget_hits()
        yield
        forget_hits()

    def test_hits_count_up_in_one_window(self, storage: RememberingStorage) -> None:
        before = time.time()
        assert [storage.incr(self.KEY, 60) for _ in range(3)] == [1, 2, 3]
        assert storage.incr(self.KEY, 60, amount=2) == 5
        assert storage.get(self.KEY) == 5
        assert before + 59 <= storage.get_expiry(self.KEY) <= time.time() + 60.5

    def test_a_counter_never_hit_is_zero_and_resets_now(self, storage: RememberingStorage) -> None:
        before = time.time()
        assert storage.get(self.KEY) == 0
        assert before <= storage.get_expiry(self.KEY) <= time.time() + 1

    def test_an_ended_window_starts_over(self, storage: RememberingStorage) -> None:
        storage.incr(self.KEY, 1)
        storage.incr(self.KEY, 1)
        time.sleep(1.1)
        forget_hits()

        assert storage.get(self.KEY) == 0
        assert storage.incr(self.KEY, 60) == 1

    def test_reads_after_a_hit_answer_the_hit_until_forgotten(
        self, storage: RememberingStorage
    ) -> None:
        assert storage.incr(self.KEY, 60) == 1
        storage.hit_window(self.KEY, 60, 4)  # another process's hits, unseen by this thread

        assert storage.get(self.KEY) == 1
        forget_hits()
        assert storage.get(self.KEY) == 5

    def test_only_the_hitting_thread_reads_its_hit(self, storage: RememberingStorage) -> None:
        storage.incr(self.KEY, 60)
        storage.hit_window(self.KEY, 60, 4)
        seen: list[int] = []
        reader = threading.Thread(target=lambda: seen.append(storage.get(self.KEY)))
        reader.start()
        reader.join()

        assert seen == [5]

    def test_a_hit_is_remembered_for_a_bounded_time(
        self, storage: RememberingStorage, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(limit_counters, "REMEMBERED_SECONDS", 0.0)
        storage.incr(self.KEY, 60)
        storage.hit_window(self.KEY, 60, 4)

        assert storage.get(self.KEY) == 5

    def test_clear_and_reset_empty_the_counters(self, storage: RememberingStorage) -> None:
        other = self.KEY.replace("192.0.2.1", "192.0.2.2")
        storage.incr(self.KEY, 60)
        storage.incr(other, 60)
        storage.clear(self.KEY)

        assert storage.get(self.KEY) == 0
        assert storage.get(other) == 1
        storage.reset()
        assert storage.get(other) == 0
        assert storage.check()

    def test_concurrent_hits_are_each_counted_once(self, storage: RememberingStorage) -> None:
        counts = race(8, lambda: storage.incr(self.KEY, 60))

        assert sorted(counts) == list(range(1, 9))  # type: ignore[type-var]
        forget_hits()
        assert storage.get(self.KEY) == 8
