"""``/docs`` renders in a real browser with no network (docs/serving.md).

Headless Chromium (Debian's ``chromium`` package; ``.ci/run`` installs it) loads the page from
``modelrouter serve`` with every other host unresolvable: Swagger UI's script and stylesheet
must come from the server itself, the script must run, fetch ``/openapi.json`` and draw each
operation. A page whose files came from a CDN, or whose Swagger UI cannot read the OpenAPI
document, shows no operation and fails here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serve.png_colours import colours
from tests.serve.test_serve import SHIPPED, Server, start_server

CHROMIUM = shutil.which("chromium")

# Skipped on a machine without it; never in CI, where a skip would hide a missing install.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="needs Debian's chromium for the browser test (`apt-get install chromium`; .ci/run installs it)",
)

#: Swagger UI's badge colours for POST and GET operations (its swagger-ui.css): present in
#: the screenshot only if the stylesheet was applied and operations were drawn.
POST_GREEN = (73, 204, 144)  # #49cc90
GET_BLUE = (97, 175, 254)  # #61affe


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # One ONNX model: the pages are the same whatever is served, and it starts fastest.
    started = start_server(["-m", str(SHIPPED / "classifier.onnx")], cwd=tmp_path_factory.mktemp("cwd"))
    yield started
    assert started.stop() == 0


def chromium(url: str, folder: Path) -> tuple[str, Path]:
    """Load ``url`` headless, offline but for 127.0.0.1: its rendered DOM and a screenshot."""
    assert CHROMIUM is not None, "chromium is not installed: .ci/run installs it (`apt-get install chromium`)"
    screenshot = folder / "docs.png"
    command = [
        str(CHROMIUM),
        "--headless=new",
        # Every name but 127.0.0.1 fails to resolve: a CDN URL cannot load.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={folder / 'profile'}",
        "--no-first-run",
        "--window-size=1280,720",
        # Virtual time runs only while nothing is loading: the scripts and openapi.json are
        # fetched and Swagger UI draws before the DOM is dumped and the screenshot taken.
        "--virtual-time-budget=10000",
        f"--screenshot={screenshot}",
        "--dump-dom",
        url,
    ]
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, screenshot


def test_docs_render_every_operation_offline(server: Server, tmp_path: Path) -> None:
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert {"/predict", "/predict_proba", "/explain", "/pool/stats"} <= set(paths)

    dom, screenshot = chromium(f"{server.url}/docs", tmp_path)

    # (a) Swagger UI ran and drew the operations of the document it fetched from the server.
    drawn = {path for path in paths if f'data-path="{path}"' in dom}
    assert drawn == set(paths), f"operations missing from the rendered page: {sorted(set(paths) - drawn)}"
    # (b) The screenshot shows it: not blank, and the operations' badges in Swagger UI's colours.
    seen = colours(screenshot)
    assert len(seen) > 50, f"the screenshot has only {len(seen)} colours"
    missing = [name for name, colour in [("POST", POST_GREEN), ("GET", GET_BLUE)] if colour not in seen]
    assert not missing, (
        f"no {' or '.join(missing)} badge in Swagger UI's colours: its stylesheet did not apply"
    )
