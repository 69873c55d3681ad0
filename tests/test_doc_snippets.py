"""Docs that run: every snippet of README.md and docs/*.md is executed, so none can drift.

Every fenced block of README.md and of each docs/*.md (found by glob: a new page is covered
without a change here) whose info string is ``python``, ``toml``, ``sh``/``shell``/``bash``/
``console``, ``json`` or ``http`` is one test case, named ``<file>:<line of the fence>``.
Blocks without a language (a command's synopsis) and ``nginx`` ones are only shown; a block in
any other language fails, so that none escapes unnoticed.
Each runs in a sandbox: a temporary directory (the working directory) holding a copy of
``examples/`` and of the factory example's ``acme`` package and ``tenant.toml``, ``.venv``
(a link to the running interpreter's environment) and the page's ``file`` blocks (below).

How each kind runs:

- ``python``: executed in a fresh namespace (``__name__`` is ``doc_snippet``, so
  ``Flask(__name__)`` roots the app in the sandbox); tracebacks point at the Markdown file's
  lines. Four shapes get more than that:

  - a hook's signature (``def passkey_...(...) -> ...`` without a body) must be the one in
    ``flask_passkey/hookspecs.py``, argument names, annotations and return type alike;
  - top-level ``@hookimpl`` functions taking ``self`` (one method of a plugin) become the body
    of a plugin class (imports stay at module level);
  - a block defining ``test_*`` functions is a test module: pytest runs it in a subprocess
    and at least one test must pass, none fail;
  - a block made only of ``app.config[...] = ...`` lines configures an app (with the sandbox's
    ``tenant.toml`` and in-memory stores) that must then start: ``Passkey(app)``.

  Every class the block defines (or the plugin class of a method) that carries ``@hookimpl``
  methods is registered with a plugin manager holding the hook specifications, which refuses
  an unknown hook or an argument the hook does not have.
- ``toml``: parsed; a tenant (it has ``custom_domains`` or ``clients``) must load through the
  tenant loader, as ``PASSKEY_TENANT_FILE`` would.
- ``json``: parsed.
- ``http``: the body is parsed as JSON; a request without a ``…`` placeholder is sent to an
  app built from the sandbox's ``tenant.toml`` and must answer 200, and when a ``json`` block
  follows it right away, the answer must have exactly its keys, at every level.
- ``sh``, ``shell``, ``bash``: run whole by bash (``set -e``) with ``.venv/bin`` first on
  ``PATH``, the checkout first on ``PYTHONPATH`` and ``FLASK_APP`` set to
  ``acme:create_app()``, whose rate-limit counters go to the test Redis
  (``PASSKEY_TEST_REDIS_URL``), as a deployment with several workers needs (a block running
  ``flask passkey doctor`` skips without that Redis, and fails under ``CI=true``). Every
  command must succeed. The last one may start a server (``flask ... run``, ``gunicorn``):
  it must answer HTTP 200 (on ``/`` or, with the tenant's custom domain as ``Host``, on
  ``/.well-known/openid-configuration``) within 30 s, and is then stopped. When its port is
  taken (another run of these tests), it runs on a free one instead.
- ``console``: a transcript. Each ``$`` command runs as above and succeeds, unless the output
  shown under it has ``Error:`` lines: then it exits with status 1 and prints exactly those.

Markers: an HTML comment right above the fence (invisible on the rendered page), one per line:

- ``<!-- snippet: partial -->``: a deliberate fragment: Python is only compiled, TOML and
  JSON only parsed, shell only syntax-checked (``bash -n``).
- ``<!-- snippet: file NAME -->``: the block is also written to NAME in the sandbox of every
  snippet of the same page (e.g. the README's ``tenant.toml``, which its Python then loads).
- ``<!-- snippet: covered-by PATH[, PATH...]: REASON -->``: not run here, because REASON (it
  installs packages, runs for minutes, shows a state the sandbox does not have...); each PATH
  is a test file that covers it and must exist.

An unknown marker, or one not right above a snippet, fails.
"""

from __future__ import annotations

import ast
import http.client
import inspect
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pluggy
import pytest
from flask import Flask

from flask_passkey import Passkey, hookspecs
from flask_passkey.builtins.tenant_config import ConfigTenant
from tests import ROOT
from tests.databases import REDIS_URL, require_redis
from tests.servers import free_port

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
KINDS = {
    "python": "python",
    "toml": "toml",
    "json": "json",
    "http": "http",
    "sh": "sh",
    "shell": "sh",
    "bash": "sh",
    "console": "console",
}
#: Languages of blocks that are shown, not run: a command's synopsis (none) or a proxy's
#: configuration. Any other language that is not in KINDS fails, so no block escapes unnoticed.
SHOWN = {"", "nginx"}
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^`\s]*)")
MARKER = re.compile(r"^\s*<!-- snippet: (?P<marker>.*?) -->\s*$")
SERVER = re.compile(r"(^|[\s/])(gunicorn|flask\b.*\srun)(\s|$)")
SERVER_TIMEOUT = 30.0
COMMAND_TIMEOUT = 60.0
PLACEHOLDER = "…"


@dataclass(frozen=True)
class Snippet:
    """A fenced block: its page, the lines of its fences, kind, text and markers."""

    path: Path
    line: int  # the opening fence, 1-based
    end: int  # the closing fence
    language: str  # the fence's info string
    text: str
    markers: tuple[str, ...]

    @property
    def kind(self) -> str | None:
        """How the block runs (a value of KINDS); None for a block that is only shown."""
        return KINDS.get(self.language)

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def marker(self, name: str) -> str | None:
        """The argument of marker ``name`` ("" without one), or None when it is absent."""
        for marker in self.markers:
            word, _, argument = marker.partition(" ")
            if word == name:
                return argument.strip()
        return None


def extract(path: Path) -> list[Snippet]:
    """Every fenced block of ``path``, in page order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    snippets: list[Snippet] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent = opening["indent"]
        close = index + 1
        while close < len(lines) and lines[close].strip() != "```":
            close += 1
        body = "\n".join(line.removeprefix(indent) for line in lines[index + 1 : close])
        markers: list[str] = []
        above = index - 1
        while above >= 0 and (found := MARKER.match(lines[above])):
            markers.insert(0, found["marker"])
            above -= 1
        language = opening["info"].lower()
        snippets.append(Snippet(path, index + 1, close + 1, language, body + "\n", tuple(markers)))
        index = close + 1
    return snippets


SNIPPETS = [snippet for path in DOCUMENTS for snippet in extract(path) if snippet.kind]


# -- the sandbox -----------------------------------------------------------------------------


def make_sandbox(directory: Path, page: Path) -> Path:
    """``directory`` set up for the snippets of ``page`` (see the module docstring)."""
    ignore = shutil.ignore_patterns("instance", "__pycache__", "*.sqlite3", "node_modules")
    shutil.copytree(ROOT / "examples", directory / "examples", ignore=ignore)
    shutil.copytree(ROOT / "examples" / "factory" / "acme", directory / "acme", ignore=ignore)
    shutil.copy(ROOT / "examples" / "factory" / "tenant.toml", directory / "tenant.toml")
    (directory / ".venv").symlink_to(Path(sys.prefix))
    for snippet in extract(page):
        name = snippet.marker("file")
        if name:
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(snippet.text, encoding="utf-8")
    return directory


def custom_domain(sandbox: Path) -> str:
    tenant = tomllib.loads((sandbox / "tenant.toml").read_text(encoding="utf-8"))
    return str(tenant["custom_domains"][0])


def sandbox_app(sandbox: Path) -> Flask:
    """An app on the sandbox's tenant with in-memory stores, not yet started."""
    app = Flask("doc_snippet", root_path=str(sandbox))
    app.config.update(
        TESTING=True,
        PASSKEY_TENANT_FILE=str(sandbox / "tenant.toml"),
        PASSKEY_DATABASE_URL="memory://",
    )
    return app


def environment() -> dict[str, str]:
    """The environment of subprocesses: this interpreter's tools, this checkout's package, and
    for the factory app (``acme``) rate-limit counters shared through the test Redis."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "FLASK_APP": "acme:create_app()",
        "FLASK_PASSKEY_RATE_LIMIT_STORAGE_URI": REDIS_URL,
        "FLASK_PASSKEY_RATE_LIMIT_KEY_PREFIX": f"doc-snippet-{secrets.token_hex(6)}",
    }


# -- python ----------------------------------------------------------------------------------


def compiled(snippet: Snippet, source: str | None = None) -> Any:
    """The code of ``source`` (the snippet's text) with the page's name and line numbers."""
    return compile(
        "\n" * snippet.line + (snippet.text if source is None else source),
        str(snippet.path),
        "exec",
    )


def hookspec_signature(name: str) -> ast.FunctionDef | None:
    tree = ast.parse(inspect.getsource(hookspecs))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    return None


def signature_of(function: ast.FunctionDef) -> tuple[str, str]:
    returns = ast.unparse(function.returns) if function.returns else ""
    return ast.unparse(function.args), returns


def as_hook_signature(snippet: Snippet) -> ast.FunctionDef | None:
    """The snippet as a body-less ``def passkey_...``, or None when it is not one."""
    if not snippet.text.lstrip().startswith("def passkey_"):
        return None
    try:
        tree = ast.parse(snippet.text.rstrip() + ": ...")
    except SyntaxError:
        return None
    only = tree.body[0] if len(tree.body) == 1 else None
    return only if isinstance(only, ast.FunctionDef) else None


def is_config_line(node: ast.stmt) -> bool:
    """``app.config[...] = ...``"""
    if not isinstance(node, ast.Assign) or len(node.targets) != 1:
        return False
    target = node.targets[0]
    return isinstance(target, ast.Subscript) and ast.unparse(target.value) == "app.config"


def is_plugin_method(node: ast.FunctionDef) -> bool:
    """``@hookimpl def name(self, ...)`` at the top level: a method out of its class."""
    return (
        any(ast.unparse(decorator).startswith("hookimpl") for decorator in node.decorator_list)
        and bool(node.args.args)
        and node.args.args[0].arg == "self"
    )


def check_plugins(namespace: dict[str, Any]) -> int:
    """Register every class of ``namespace`` with ``@hookimpl`` methods; how many there were."""
    plugins = [
        value
        for value in namespace.values()
        if isinstance(value, type)
        and any(hasattr(member, f"{hookspecs.PROJECT}_impl") for member in vars(value).values())
    ]
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    for plugin in plugins:
        manager.register(object.__new__(plugin))
    manager.check_pending()  # an implementation of a hook that does not exist
    return len(plugins)


def run_python(snippet: Snippet, sandbox: Path) -> None:
    """Compile the snippet, then run it the way its shape asks (see the module docstring)."""
    signature = as_hook_signature(snippet)
    if signature is None:
        compiled(snippet)  # a syntax error, with the page's line number
    if snippet.marker("partial") is not None:
        return
    if signature is not None:
        spec = hookspec_signature(signature.name)
        assert spec is not None, f"{signature.name} is not a hook of flask_passkey/hookspecs.py"
        assert signature_of(signature) == signature_of(spec), (
            f"the signature differs from flask_passkey/hookspecs.py: {signature_of(spec)}"
        )
        return
    tree = ast.parse(snippet.text, str(snippet.path))
    if any(isinstance(n, ast.FunctionDef) and n.name.startswith("test_") for n in tree.body):
        run_test_module(snippet, sandbox)
        return
    namespace: dict[str, Any] = {"__name__": "doc_snippet"}
    if all(is_config_line(node) for node in tree.body):
        app = sandbox_app(sandbox)
        namespace["app"] = app
        exec(compiled(snippet), namespace)
        Passkey(app)
        return
    methods = [n for n in tree.body if isinstance(n, ast.FunctionDef) and is_plugin_method(n)]
    if methods:
        run_plugin_methods(snippet, tree, methods)
        return
    exec(compiled(snippet), namespace)
    check_plugins(namespace)


def run_plugin_methods(snippet: Snippet, tree: ast.Module, methods: list[ast.FunctionDef]) -> None:
    """The snippet's imports, then its methods as the body of a plugin class, registered."""
    rest = [node for node in tree.body if node not in methods]
    assert all(isinstance(node, ast.Import | ast.ImportFrom) for node in rest), (
        "a block of plugin methods has only imports besides them"
    )
    lines = snippet.text.splitlines()
    first = min(decorator.lineno for m in methods for decorator in m.decorator_list) - 1
    head = lines[: first - 1] if first and not lines[first - 1].strip() else lines[:first]
    # "class DocPlugin:" takes the place of the blank line above the first method (or of the
    # fence), so that tracebacks keep the page's line numbers.
    source = "\n" * (snippet.line + first - 1)
    source += "class DocPlugin:\n" + textwrap.indent("\n".join(lines[first:]), "    ")
    namespace: dict[str, Any] = {"__name__": "doc_snippet", "hookimpl": hookspecs.hookimpl}
    exec(compiled(snippet, "\n".join(head)), namespace)
    exec(compile(source, str(snippet.path), "exec"), namespace)
    assert check_plugins(namespace) == 1


def run_test_module(snippet: Snippet, sandbox: Path) -> None:
    """pytest on the snippet as a test file of the sandbox: something passes, nothing fails."""
    name = re.sub(r"\W", "_", snippet.id.lower())
    module = sandbox / f"test_{name}.py"
    module.write_text(snippet.text, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", module.name]
    result = subprocess.run(
        command,
        cwd=sandbox,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"pytest on {snippet.id}:\n{result.stdout}{result.stderr}"
    assert re.search(r"\b[1-9]\d* passed\b", result.stdout), result.stdout


# -- toml, json, http ------------------------------------------------------------------------


def run_toml(snippet: Snippet) -> None:
    data = tomllib.loads(snippet.text)
    if snippet.marker("partial") is None and ("custom_domains" in data or "clients" in data):
        ConfigTenant(data)


def run_json(snippet: Snippet) -> None:
    json.loads(snippet.text)


def keys(value: Any) -> Any:
    """The shape of a JSON value: its keys at every level (lists by their first item)."""
    if isinstance(value, dict):
        return {key: keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [keys(value[0])] if value else []
    return None


def run_http(snippet: Snippet, sandbox: Path) -> None:
    head, _, body = snippet.text.partition("\n\n")
    request_line, *header_lines = head.splitlines()
    method, path = request_line.split()[:2]
    headers = dict(line.split(": ", 1) for line in header_lines)
    payload = json.loads(body)
    if snippet.marker("partial") is not None or PLACEHOLDER in body:
        return
    app = sandbox_app(sandbox)
    Passkey(app)
    response = app.test_client().open(path, method=method, headers=headers, json=payload)
    assert response.status_code == 200, response.get_data(as_text=True)
    following = next(
        (s for s in SNIPPETS if s.path == snippet.path and s.line > snippet.line), None
    )
    if following and following.kind == "json" and following.line == snippet.end + 1:
        assert keys(response.get_json()) == keys(json.loads(following.text)), (
            f"the answer's keys differ from the block at {following.id}"
        )


# -- shell -----------------------------------------------------------------------------------


def transcript(snippet: Snippet) -> list[tuple[str, list[str]]]:
    """A console block's commands (its ``$`` lines), each with the output shown under it."""
    steps: list[tuple[str, list[str]]] = []
    continued = False
    for line in snippet.text.splitlines():
        if continued:
            steps[-1] = (steps[-1][0] + "\n" + line, [])
        elif line.startswith("$ "):
            steps.append((line.removeprefix("$ "), []))
        elif steps:
            steps[-1][1].append(line)
        continued = line.endswith("\\")
    return steps


def server_address(command: str) -> tuple[str, int]:
    """Where the server of ``command`` listens (its --bind, or --host and --port)."""
    bind = re.search(r"--bind[ =](\S+):(\d+)", command)
    if bind:
        return bind[1], int(bind[2])
    host = re.search(r"--host[ =](\S+)", command)
    port = re.search(r"--port[ =](\d+)", command)
    return (host[1] if host else "127.0.0.1"), (int(port[1]) if port else 5000)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def answers_200(host: str, port: int, domain: str) -> bool:
    for path, headers in (("/", {}), ("/.well-known/openid-configuration", {"Host": domain})):
        connection = http.client.HTTPConnection(host, port, timeout=5)
        try:
            connection.request("GET", path, headers=headers)
            if connection.getresponse().status == 200:
                return True
        except OSError:
            return False
        finally:
            connection.close()
    return False


def stop(group: int, process: subprocess.Popen[str]) -> None:
    """SIGTERM to the process group ``group`` (a server shuts down gracefully), SIGKILL to
    whatever is left of it after 15 s."""
    deadline = time.monotonic() + 15
    try:
        os.killpg(group, signal.SIGTERM)
        while time.monotonic() < deadline:
            process.poll()  # reap the shell, or it stays in the group as a zombie
            os.killpg(group, 0)
            time.sleep(0.1)
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the group is gone
    process.wait()


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes started by a test, each in a session of its own: stopped, with everything
    they started, when the test ends."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        stop(process.pid, process)


def start(
    script: str, sandbox: Path, started: list[subprocess.Popen[str]]
) -> tuple[subprocess.Popen[str], IO[str]]:
    """``script`` running under bash (``set -e``) in the sandbox; its output goes to the log."""
    (sandbox / "snippet.sh").write_text("set -e\n" + script, encoding="utf-8")
    log = (sandbox / "output.log").open("w+")
    process = subprocess.Popen(
        ["bash", "snippet.sh"],
        cwd=sandbox,
        env=environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so that the fixture stops its children too
    )
    started.append(process)
    return process, log


def run(script: str, sandbox: Path, started: list[subprocess.Popen[str]]) -> tuple[int, str]:
    """The exit status and output of ``script``, which must end within COMMAND_TIMEOUT."""
    process, log = start(script, sandbox, started)
    with log:
        try:
            process.wait(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running after {COMMAND_TIMEOUT} s:\n{script}")
        log.seek(0)
        return process.returncode, log.read()


def run_console(snippet: Snippet, sandbox: Path, started: list[subprocess.Popen[str]]) -> None:
    """Each command succeeds, unless the transcript shows it failing with ``Error:`` lines:
    then it fails with status 1 and prints exactly those lines."""
    for command, shown in transcript(snippet):
        status, output = run(command + "\n", sandbox, started)
        errors = [line for line in shown if line.startswith("Error:")]
        if errors:
            printed = [line for line in output.splitlines() if line.startswith("Error:")]
            assert (status, printed) == (1, errors), f"$ {command}\n{output}"
        else:
            assert status == 0, f"$ {command}\n{output}"


def run_shell(snippet: Snippet, sandbox: Path, started: list[subprocess.Popen[str]]) -> None:
    script = snippet.text
    if snippet.marker("partial") is not None:
        subprocess.run(["bash", "-n"], input=script, text=True, check=True)
        return
    if "passkey doctor" in script:
        require_redis()
    lines = [line for line in script.splitlines() if line.strip()]
    servers = [line for line in lines if SERVER.search(line.split("#")[0])]
    assert servers in ([], [lines[-1]]), "only the last command may start a server"
    if not servers:
        status, output = run(script, sandbox, started)
        assert status == 0, output
        return
    host, port = server_address(servers[0])
    if not port_is_free(host, port):  # another run of these tests, or a developer's server
        free = free_port(host)
        moved = re.sub(rf"(?<=[:= ]){port}(?!\d)", str(free), servers[0])
        script, port = script.replace(servers[0], moved), free
    process, log = start(script, sandbox, started)
    with log:
        deadline = time.monotonic() + SERVER_TIMEOUT
        while not answers_200(host, port, custom_domain(sandbox)):
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"no HTTP 200 on {host}:{port}:\n{log.read()}")
            time.sleep(0.2)


# -- the tests -------------------------------------------------------------------------------


def test_every_page_has_snippets() -> None:
    pages = {snippet.path for snippet in SNIPPETS}
    assert ROOT / "README.md" in pages
    assert len(pages) > 2


def test_every_block_is_run_or_only_shown() -> None:
    unknown = [
        f"{block.id} ({block.language})"
        for path in DOCUMENTS
        for block in extract(path)
        if block.kind is None and block.language not in SHOWN
    ]
    assert unknown == [], f"add the language to KINDS (and run it) or to SHOWN: {unknown}"


def test_every_marker_is_right_above_a_snippet() -> None:
    misplaced = []
    for path in DOCUMENTS:
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if not MARKER.match(line):
                continue
            after = number + 1
            while after < len(lines) and MARKER.match(lines[after]):
                after += 1
            if after == len(lines) or not FENCE.match(lines[after]):
                misplaced.append(f"{path.relative_to(ROOT)}:{number + 1}")
    assert misplaced == []


def slow_if_it_serves(snippet: Snippet) -> Any:
    serves = snippet.kind in ("sh", "console") and SERVER.search(snippet.text)
    marks = [pytest.mark.slow] if serves else []
    return pytest.param(snippet, id=snippet.id, marks=marks)


@pytest.mark.parametrize("snippet", [slow_if_it_serves(s) for s in SNIPPETS])
def test_snippet(
    snippet: Snippet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    started: list[subprocess.Popen[str]],
) -> None:
    for marker in snippet.markers:
        assert marker.partition(" ")[0] in ("partial", "file", "covered-by"), marker
    covered_by = snippet.marker("covered-by")
    if covered_by is not None:
        paths, colon, reason = covered_by.partition(": ")
        assert colon and reason.strip(), "covered-by needs a reason after ': '"
        for covering in paths.split(", "):
            assert (ROOT / covering).is_file(), f"{covering}, named by covered-by, is missing"
        return
    sandbox = make_sandbox(tmp_path, snippet.path)
    monkeypatch.chdir(sandbox)
    if snippet.kind == "python":
        run_python(snippet, sandbox)
    elif snippet.kind == "toml":
        run_toml(snippet)
    elif snippet.kind == "json":
        run_json(snippet)
    elif snippet.kind == "http":
        run_http(snippet, sandbox)
    elif snippet.kind == "console":
        run_console(snippet, sandbox, started)
    else:
        run_shell(snippet, sandbox, started)
