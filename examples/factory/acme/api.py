"""A resource server in the same app: accepts the access tokens that /oauth/token issues."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from flask_passkey import current_token

from .extensions import passkey

api = Blueprint("acme_api", __name__, url_prefix="/api")


@api.get("/me")
@passkey.require_token()  # an access token for one of the app's PASSKEY_AUDIENCES
def me() -> Any:
    """Who the bearer of the access token is: ``Authorization: Bearer <access_token>``."""
    return jsonify(
        sub=current_token.user.id,
        scope=" ".join(current_token.scope),
        client_id=current_token.client_id,
    )
