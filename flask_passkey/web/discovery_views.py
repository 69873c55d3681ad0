"""The well-known files on every custom domain: JWKS, OpenID configuration, Android asset
links, Apple app-site association, WebAuthn related origins, and the OpenAPI document."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Response, jsonify

from flask_passkey.core.dpop import ALGORITHMS as DPOP_ALGORITHMS
from flask_passkey.core.grants import SUPPORTED_SCOPES
from flask_passkey.core.tokens import ALGORITHM, SCOPE_CLAIMS
from flask_passkey.web.blueprint import method_not_allowed, register_error_handlers, request_intake
from flask_passkey.web.grants import TOKEN_GRANTS
from flask_passkey.web.openapi import OPENAPI_PATH, openapi_json
from flask_passkey.web.userinfo_views import USERINFO_PATH

if TYPE_CHECKING:
    from flask_passkey.extension import PasskeyState

DISCOVERY_BLUEPRINT_NAME = "passkey_discovery"
#: WebAuthn Level 3 §5.11: the origins that may use the RP ID of the host serving it.
WEBAUTHN_WELL_KNOWN = "/.well-known/webauthn"
#: The claims tokens carry: registered ones, then those each scope releases.
CLAIMS_SUPPORTED = [
    *("iss", "sub", "aud", "exp", "iat", "auth_time", "amr", "org_id"),
    *(claim for claims in SCOPE_CLAIMS.values() for claim in claims),
]


def create_discovery_blueprint(state: PasskeyState) -> Blueprint:
    """The well-known files: JWKS, OpenID configuration, Android asset links, Apple AASA."""
    bp = Blueprint(DISCOVERY_BLUEPRINT_NAME, __name__)
    incoming = request_intake(state)
    prefix = state.settings.url_prefix

    @bp.get("/.well-known/jwks.json")
    def jwks() -> tuple[Response, int, dict[str, str]]:
        incoming("discovery")
        return (
            jsonify(state.grants.issuer.keys.jwks()),
            200,
            {"Cache-Control": "public, max-age=300"},
        )

    @bp.get("/.well-known/openid-configuration")
    def openid_configuration() -> Response:
        base = incoming("discovery").origin
        client_authentication = ["none", "client_secret_post", "client_secret_basic"]
        return jsonify(
            issuer=base + "/",
            jwks_uri=f"{base}/.well-known/jwks.json",
            token_endpoint=f"{base}{prefix}/oauth/token",
            userinfo_endpoint=f"{base}{prefix}{USERINFO_PATH}",
            grant_types_supported=[grant.grant_type for grant in TOKEN_GRANTS],
            response_types_supported=["token"],
            subject_types_supported=["public"],
            id_token_signing_alg_values_supported=[ALGORITHM],
            token_endpoint_auth_methods_supported=client_authentication,
            revocation_endpoint=f"{base}{prefix}/oauth/revoke",
            revocation_endpoint_auth_methods_supported=client_authentication,
            scopes_supported=list(SUPPORTED_SCOPES),
            claims_supported=CLAIMS_SUPPORTED,
            dpop_signing_alg_values_supported=list(DPOP_ALGORITHMS),
        )

    @bp.get("/.well-known/assetlinks.json")
    def assetlinks() -> Response:
        incoming("discovery")
        statements = [
            {
                "relation": [
                    "delegate_permission/common.handle_all_urls",
                    "delegate_permission/common.get_login_creds",
                ],
                "target": {
                    "namespace": "android_app",
                    "package_name": app.package_name,
                    "sha256_cert_fingerprints": list(app.sha256_cert_fingerprints),
                },
            }
            for client in state.clients()
            for app in client.android_apps
        ]
        return jsonify(statements)

    @bp.get("/.well-known/apple-app-site-association")
    def apple_app_site_association() -> Response:
        incoming("discovery")
        apps = sorted({app.app_id for client in state.clients() for app in client.ios_apps})
        return jsonify(webcredentials={"apps": apps})

    @bp.get(WEBAUTHN_WELL_KNOWN)
    def webauthn_related_origins() -> tuple[Response, int, dict[str, str]]:
        # Browsers fetch it from the RP ID's host (https://<rp id>/.well-known/webauthn),
        # without credentials and outside CORS, when a page elsewhere names the RP ID.
        incoming("discovery")
        origins = list(state.validator.tenant().related_origins)
        return jsonify(origins=origins), 200, {"Cache-Control": "public, max-age=300"}

    @bp.get(prefix + OPENAPI_PATH)
    def openapi_document() -> Response:
        incoming("discovery")
        return Response(openapi_json(state.settings), mimetype="application/json")

    for rule, endpoint in (
        ("/.well-known/jwks.json", "jwks"),
        ("/.well-known/openid-configuration", "openid_configuration"),
        ("/.well-known/assetlinks.json", "assetlinks"),
        ("/.well-known/apple-app-site-association", "apple_app_site_association"),
        (WEBAUTHN_WELL_KNOWN, "webauthn_related_origins"),
        (prefix + OPENAPI_PATH, "openapi_document"),
    ):
        bp.add_url_rule(
            rule,
            f"{endpoint}_other_methods",
            method_not_allowed(("GET", "HEAD")),
            methods=["POST", "PUT", "PATCH", "DELETE"],
        )

    register_error_handlers(bp, state)
    return bp
