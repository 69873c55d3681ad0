"""An app server process for the multi-process tests (not a test module).

Builds the app of :func:`tests.apps.make_app` with the config in the JSON of
``PASSKEY_REDIS_TEST_APP_CONFIG``, binds a free loopback port, prints it on one line and
serves until terminated.
"""

from __future__ import annotations

import json
import os

from tests.apps import make_app
from werkzeug.serving import make_server


def main() -> None:
    app = make_app(**json.loads(os.environ["PASSKEY_REDIS_TEST_APP_CONFIG"]))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
