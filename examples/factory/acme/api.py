"""A resource server in the same app: accepts the access tokens that /oauth/token issues."""

from __future__ import annotations

from typing import Any

import jwt
from flask import Blueprint, current_app, jsonify, request

from flask_passkey.extension import get_state

api = Blueprint("acme_api", __name__, url_prefix="/api")


@api.get("/me")
def me() -> Any:
    """Who the bearer of the access token is: ``Authorization: Bearer <access_token>``."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return _unauthorized("A bearer access token is required.")
    keys = jwt.PyJWKSet.from_dict(get_state(current_app).grants.issuer.keys.jwks())
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = next(k for k in keys.keys if k.key_id == kid)
        claims = jwt.decode(
            token,
            key=key,
            algorithms=["RS256"],
            audience=current_app.config["ACME_API_AUDIENCE"],
            issuer=f"https://{request.host}/",
            options={"require": ["iss", "sub", "aud", "exp"]},
        )
    except (jwt.PyJWTError, StopIteration):
        return _unauthorized("The access token is invalid or expired.")
    return jsonify(sub=claims["sub"], scope=claims.get("scope", ""), client_id=claims["client_id"])


def _unauthorized(description: str) -> Any:
    response = jsonify(error="invalid_token", error_description=description)
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response
