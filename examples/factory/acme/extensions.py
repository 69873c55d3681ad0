"""Extensions are created once, at import time, and bound to each app in ``create_app``."""

from flask_passkey import Passkey

#: Holds no app state: everything it builds for an app lives in ``app.extensions["passkey"]``.
passkey = Passkey()
