"""The framework-free core: WebAuthn ceremonies, grants, tokens, access checks, the My Account
operations and the validation pipeline. Nothing here imports Flask."""
