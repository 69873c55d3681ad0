"""The tables of the SQL store, as the newest migration leaves them.

This is the schema the code reads and writes; ``flask_passkey/stores/migrations`` is how a database
gets there. A test checks that the two agree, so a change here needs a new migration.
Times are epoch seconds (double precision), like the models.
"""

from __future__ import annotations

import sqlalchemy as sa

#: Deterministic constraint and index names, so later migrations can refer to them.
NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("connection", sa.String, nullable=False),
    sa.Column("user_handle", sa.LargeBinary, nullable=False, unique=True),
    sa.Column("email", sa.String),
    sa.Column("phone_number", sa.String),
    sa.Column("username", sa.String),
    sa.Column("profile", sa.JSON, nullable=False),
    sa.Column("user_metadata", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False, index=True),
    # Identifiers are unique per connection; these constraints are also the lookup indexes.
    sa.UniqueConstraint("connection", "email"),
    sa.UniqueConstraint("connection", "phone_number"),
    sa.UniqueConstraint("connection", "username"),
)

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("id", sa.LargeBinary, primary_key=True),
    sa.Column("user_id", sa.String, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("public_key", sa.LargeBinary, nullable=False),
    # WebAuthn counters are unsigned 32-bit: too big for a signed INTEGER.
    sa.Column("sign_count", sa.BigInteger, nullable=False),
    sa.Column("backup_eligible", sa.Boolean, nullable=False),
    sa.Column("backed_up", sa.Boolean, nullable=False),
    sa.Column("transports", sa.JSON, nullable=False),
    sa.Column("aaguid", sa.String, nullable=False),
    sa.Column("rp_id", sa.String, nullable=False),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("last_used_at", sa.Double),
    # Registered with a trusted attestation of a hardware key (migration 0009)
    sa.Column("hardware_attested", sa.Boolean, nullable=False),
    sa.Index(None, "user_id", "created_at"),
)

organization_members = sa.Table(
    "organization_members",
    metadata,
    sa.Column("organization_id", sa.String, primary_key=True),
    sa.Column(
        "user_id",
        sa.String,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)

auth_sessions = sa.Table(
    "auth_sessions",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    # :meth:`flask_passkey.stores.sessions.AuthSession.to_json`
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False, index=True),
)

#: :meth:`flask_passkey.stores.sessions.SessionStore.put_marker`'s keys (e.g. DPoP proofs seen).
markers = sa.Table(
    "markers",
    metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("expires_at", sa.Double, nullable=False, index=True),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("token_hash", sa.String, primary_key=True),
    sa.Column(
        "user_id",
        sa.String,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("client_id", sa.String, nullable=False),
    sa.Column("scope", sa.JSON, nullable=False),
    sa.Column("audience", sa.String),
    sa.Column("organization_id", sa.String),
    sa.Column("expires_at", sa.Double, nullable=False, index=True),
    sa.Column("auth_time", sa.Double, nullable=False),
    sa.Column("credential_id", sa.LargeBinary),
    # The tokens rotated out of one sign-in; a spent token's row stays (used_at set) until
    # the family expires, so that its reuse is recognised.
    sa.Column("family_id", sa.String, nullable=False, index=True),
    sa.Column("idle_expires_at", sa.Double),
    sa.Column("used_at", sa.Double),
    # The RFC 7638 thumbprint of the DPoP key a public client's refresh token is bound to.
    sa.Column("dpop_jkt", sa.String),
)

# A revoked family: its tokens are deleted, and this row refuses any token of the family
# inserted after the revocation (a rotation racing with it), until the family expires.
refresh_token_revocations = sa.Table(
    "refresh_token_revocations",
    metadata,
    sa.Column("family_id", sa.String, primary_key=True),
    sa.Column("expires_at", sa.Double, nullable=False, index=True),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String, primary_key=True),
    # The private JWK as JSON text.
    sa.Column("private_jwk", sa.Text, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)

clients = sa.Table(
    "clients",
    metadata,
    sa.Column("client_id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    # Only the hash (``sha256$<hex>``, flask_passkey.core.client_secrets): never the secret itself.
    sa.Column("client_secret_hash", sa.String),
    sa.Column("app_type", sa.String, nullable=False),
    sa.Column("is_first_party", sa.Boolean, nullable=False),
    sa.Column("oidc_conformant", sa.Boolean, nullable=False),
    sa.Column("grant_types", sa.JSON, nullable=False),
    sa.Column("token_endpoint_auth_method", sa.String, nullable=False),
    sa.Column("organization_usage", sa.String, nullable=False),
    sa.Column("connections", sa.JSON, nullable=False),
    sa.Column("default_connection", sa.String),
    sa.Column("web_origins", sa.JSON, nullable=False),
    sa.Column("allowed_top_origins", sa.JSON, nullable=False, server_default="[]"),
    # CORS origins; NULL: the web origins (migration 0007)
    sa.Column("allowed_origins", sa.JSON),
    # [{"package_name": ..., "sha256_cert_fingerprints": [...]}]
    sa.Column("android_apps", sa.JSON, nullable=False),
    # [{"team_id": ..., "bundle_id": ...}]
    sa.Column("ios_apps", sa.JSON, nullable=False),
    # Auth0's refresh_token.policies: [{"audience": ..., "scope": [...]}]
    sa.Column("refresh_token_policies", sa.JSON, nullable=False),
    sa.Column("challenge_without_secret", sa.Boolean, nullable=False),
)
