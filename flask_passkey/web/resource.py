"""The host app's own protected routes (``Passkey.require_token``): they accept the access
tokens this server issues exactly as ``/userinfo`` and the My Account API do, and show the
accepted one to the view as :data:`current_token`.

Checked in this order: the Host (400 ``invalid_request`` when malformed), the access token and
its DPoP proof (401 ``invalid_token`` or ``invalid_dpop_proof``, with a ``WWW-Authenticate``
challenge: see :meth:`flask_passkey.core.access.AccessVerifier.verify`), then the scopes (403
``insufficient_scope``). A refusal is the JSON error body of the API, never the view's; a store
that cannot be reached answers 503 ``temporarily_unavailable``. No validation step plugin runs
and no event is emitted: the route is the host app's, not one of flask-passkey's endpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar, cast

from flask import current_app, g, request
from werkzeug.local import LocalProxy

from flask_passkey.core.access import AccessToken, Presented, require_scopes
from flask_passkey.core.passkey_request import https_origin
from flask_passkey.errors import BackendUnavailable, PasskeyError, TemporarilyUnavailable
from flask_passkey.web.blueprint import dpop_proof, error_answer, url_on
from flask_passkey.web.proxy import request_host

if TYPE_CHECKING:
    from flask_passkey.extension import PasskeyState

#: flask.g attribute: the access token the request's protected view accepted.
_TOKEN = "passkey_access_token"
F = TypeVar("F", bound=Callable[..., Any])


def _accepted_token() -> AccessToken:
    token: AccessToken | None = g.get(_TOKEN)
    if token is None:
        raise RuntimeError(
            "current_token is only set inside a view decorated with passkey.require_token()."
        )
    return token


#: The access token the view in hand accepted (an :class:`AccessToken`): its ``user``,
#: ``client_id``, ``scope`` and verified ``claims``. Only inside a view decorated with
#: ``Passkey.require_token``; RuntimeError elsewhere.
current_token: AccessToken = cast(AccessToken, LocalProxy(_accepted_token))


@dataclass(frozen=True)
class Requirement:
    """What a protected route asks of a token."""

    #: Every one of these must be granted.
    scopes: tuple[str, ...]
    #: The token must be for one of these; empty: for one of the app's ``PASSKEY_AUDIENCES``.
    audiences: tuple[str, ...]

    @classmethod
    def of(
        cls, scope: str | Iterable[str] | None, audience: str | Iterable[str] | None
    ) -> Requirement:
        """From ``require_token``'s arguments: ``scope`` space-separated or a list of scopes,
        ``audience`` one API identifier or several."""
        scopes = _words(scope)
        if audience is None:
            audiences: tuple[str, ...] = ()
        elif isinstance(audience, str):
            audiences = (audience,)
        else:
            audiences = tuple(audience)
        if any(not isinstance(item, str) or not item for item in audiences):
            raise TypeError("audience must be a non-empty string or a list of them")
        return cls(scopes=scopes, audiences=audiences)


def _words(scope: str | Iterable[str] | None) -> tuple[str, ...]:
    if scope is None:
        return ()
    items = [scope] if isinstance(scope, str) else list(scope)
    if any(not isinstance(item, str) for item in items):
        raise TypeError("scope must be a string or a list of strings")
    return tuple(dict.fromkeys(word for item in items for word in item.split()))


def protect(view: F, requirement: Requirement, state: Callable[[], PasskeyState]) -> F:
    """``view``, answering only requests whose access token meets ``requirement``; ``state``
    gives the extension state of the app handling the request."""

    @wraps(view)
    def protected(*args: Any, **kwargs: Any) -> Any:
        try:
            token = accepted_token(state(), requirement)
        except BackendUnavailable:
            return error_answer(TemporarilyUnavailable())
        except PasskeyError as error:
            return error_answer(error)
        setattr(g, _TOKEN, token)
        return current_app.ensure_sync(view)(*args, **kwargs)

    return cast(F, protected)


def accepted_token(state: PasskeyState, requirement: Requirement) -> AccessToken:
    """The request's access token, if it meets ``requirement`` on the domain the request came
    on; the PasskeyError to answer otherwise."""
    audiences = requirement.audiences or state.settings.audiences
    if not audiences:
        raise RuntimeError(
            "passkey.require_token() without audience= accepts the app's PASSKEY_AUDIENCES, "
            "and it has none: set PASSKEY_AUDIENCES or name the audience."
        )
    host, port = request_host(state.settings.trusted_proxies)
    origin = https_origin(host, port)
    presented = Presented(
        authorization=request.headers.get("Authorization"),
        dpop=dpop_proof(),
        method=request.method,
        url=url_on(origin),
    )
    token = state.access.verify(presented, issuer=f"{origin}/", audience=audiences)
    require_scopes(token, requirement.scopes)
    return token
