"""The audiences this server issues access tokens for by itself, on every custom domain, and
the scopes that belong to them. Framework-free.

Both the token endpoint (which grants them) and the resources (which check them) read these,
so neither has to import the other.
"""

from __future__ import annotations

SCOPE_CREATE = "create:me:authentication_methods"
SCOPE_READ = "read:me:authentication_methods"
SCOPE_UPDATE = "update:me:authentication_methods"
SCOPE_DELETE = "delete:me:authentication_methods"
SCOPE_READ_FACTORS = "read:me:factors"
#: The scopes of the My Account API's endpoints: granted only for its audience, and only when
#: asked for.
MY_ACCOUNT_SCOPES = (SCOPE_CREATE, SCOPE_READ, SCOPE_UPDATE, SCOPE_DELETE, SCOPE_READ_FACTORS)


def userinfo_audience(issuer: str) -> str:
    """The audience of access tokens for the userinfo endpoint (``https://<domain>/userinfo``
    for ``issuer`` ``https://<domain>/``), the token endpoint's default audience."""
    return f"{issuer}userinfo"


def my_account_audience(issuer: str) -> str:
    """The My Account API's audience on the domain of ``issuer`` (``https://<domain>/``)."""
    return f"{issuer}me/"
