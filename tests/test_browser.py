"""A learner's first minutes, in a real browser.

JupyterLab serves a temporary copy of notebooks/; headless Chromium, driven by Playwright,
opens a chapter (00_welcome.ipynb when it exists), runs all its cells from the Run menu and
checks that no cell fails and that a graphviz drawing and a matplotlib figure are shown.
A screenshot lands in test-artifacts/browser-<chapter>.png.
"""

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
WELCOME = "00_welcome.ipynb"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SERVER_START_SECONDS = 180
RUN_ALL_SECONDS = 600
# JupyterLab settings for the test: no news or update pop-up, and every cell attached to
# the page (no windowing), so that the page shows the whole notebook.
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}

# Graphviz wraps every drawing in <g id="graph0" class="graph">.
GRAPHVIZ_MARK = 'class="graph"'
KERNEL_IDLE = re.compile(r"^(?!No Kernel).* \| Idle$")

# What the page shows: outputs with a traceback, the cells' input prompts ("[ ]:", "[*]:",
# "[3]:") and the output images of graphviz (SVG) and matplotlib (PNG), each with its
# source and whether it decoded.
PAGE_REPORT_JS = """() => {
    const outputs = [...document.querySelectorAll('.jp-OutputArea-output')];
    const ofType = mimeType => outputs.filter(output => output.dataset.mimeType === mimeType);
    const images = mimeType => ofType(mimeType).flatMap(output => [...output.querySelectorAll('img')])
        .map(img => ({src: img.src, loaded: img.complete && img.naturalWidth > 0}));
    return {
        errors: [...ofType('application/vnd.jupyter.error'),
                 ...ofType('application/vnd.jupyter.stderr').filter(
                     output => output.textContent.includes('Traceback'))].map(output => output.textContent),
        prompts: [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
            .map(prompt => prompt.textContent.trim()),
        svg: images('image/svg+xml'),
        png: images('image/png'),
    };
}"""

# True once a cell shows a traceback (Run All stops there), or once `expectedRuns` cells
# have an execution number, none is running and every output image has decoded.
RUN_FINISHED_JS = f"""(expectedRuns) => {{
    const report = ({PAGE_REPORT_JS})();
    if (report.errors.length) return true;
    const finished = report.prompts.filter(text => /\\[\\d+\\]/.test(text)).length;
    const images = [...document.querySelectorAll('.jp-OutputArea-output img')];
    return finished >= expectedRuns && !report.prompts.some(text => text.includes('*'))
        && images.every(img => img.complete);
}}"""


@pytest.fixture
def chapter():
    """The chapter notebook to open: the welcome chapter, else the first one in notebooks/."""
    if (NOTEBOOKS / WELCOME).exists():
        return WELCOME
    chapters = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
    if not chapters:
        pytest.skip("notebooks/ has no chapter notebook yet")
    return chapters[0]


@pytest.fixture
def sync_playwright():
    """Playwright's sync API; without it or Chromium the test skips (and fails under CI=true)."""
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "the playwright Python package is not installed"
    if not CHROMIUM.exists():
        problem = f"no Chromium at {CHROMIUM} (on Debian/Ubuntu: apt-get install chromium)"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)
    return sync_playwright


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_is_up(url, token):
    request = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def jupyterlab_server(root, workdir):
    """Run JupyterLab on 127.0.0.1 over `root`, with every Jupyter folder inside `workdir`.

    Yields (url, token). The server is stopped on exit, whatever happened.
    """
    folders = {name: workdir / name for name in ("config", "data", "runtime", "settings",
                                                 "user-settings", "workspaces", "ipython")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    (folders["settings"] / "overrides.json").write_text(json.dumps(LAB_OVERRIDES))
    environment = {name: value for name, value in os.environ.items() if name != "MPLBACKEND"}
    environment.update(
        JUPYTER_CONFIG_DIR=str(folders["config"]), JUPYTER_DATA_DIR=str(folders["data"]),
        JUPYTER_RUNTIME_DIR=str(folders["runtime"]), IPYTHONDIR=str(folders["ipython"]),
        JUPYTERLAB_SETTINGS_DIR=str(folders["user-settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(folders["workspaces"]),
    )
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               "--ServerApp.open_browser=False", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", f"--LabApp.app_settings_dir={folders['settings']}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / "jupyterlab.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=root, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not server_is_up(url, token):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start; its log:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url, token
    finally:
        server.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def run_all_cells(sync_playwright, url, token, notebook, expected_runs, profile_dir, screenshot):
    """Open `notebook` in headless Chromium, run all its cells, and return PAGE_REPORT_JS's report.

    The screenshot is saved in every case, to show what went wrong when something did.
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile_dir), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1400},
        )
        page = browser.pages[0] if browser.pages else browser.new_page()
        try:
            page.set_default_timeout(SERVER_START_SECONDS * 1000)
            page.goto(f"{url}/lab/tree/{notebook}?token={token}")
            # The status bar reads "No Kernel | Initializing" until the kernel is connected;
            # Run All before that silently runs nothing.
            page.locator(".jp-StatusBar-TextItem", has_text=KERNEL_IDLE).wait_for()
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            page.wait_for_function(RUN_FINISHED_JS, arg=expected_runs, polling=500,
                                   timeout=RUN_ALL_SECONDS * 1000)
            return page.evaluate(PAGE_REPORT_JS)
        finally:
            drawings = page.locator(".jp-OutputArea-output[data-mime-type='image/svg+xml'] img")
            if drawings.count():
                drawings.first.scroll_into_view_if_needed()
            screenshot.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(screenshot))
            browser.close()


def is_graphviz_drawing(image):
    """An SVG output image that decoded and, when its source is inline, was made by graphviz."""
    source = image["src"]
    return image["loaded"] and (source.startswith("blob:") or (
        source.startswith("data:image/svg+xml") and GRAPHVIZ_MARK in urllib.parse.unquote(source)))


def code_cells_to_run(path):
    """How many code cells Run All executes: the non-empty ones."""
    return sum(1 for cell in nbformat.read(path, as_version=4).cells
               if cell.cell_type == "code" and cell.source.strip())


def test_run_all_cells_of_a_chapter_in_jupyterlab(chapter, sync_playwright, tmp_path):
    root = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    screenshot = ARTIFACTS / f"browser-{Path(chapter).stem}.png"
    with jupyterlab_server(root, tmp_path / "jupyter") as (url, token):
        report = run_all_cells(sync_playwright, url, token, chapter, code_cells_to_run(root / chapter),
                               tmp_path / "chromium-profile", screenshot)

    assert report["errors"] == [], f"a cell of {chapter} failed in JupyterLab:\n" + "\n".join(report["errors"])
    ran = [prompt for prompt in report["prompts"] if re.fullmatch(r"\[\d+\]:", prompt)]
    assert len(ran) == code_cells_to_run(root / chapter), f"not every cell ran: {report['prompts']}"
    assert any(map(is_graphviz_drawing, report["svg"])), f"{chapter} shows no graphviz drawing: {report['svg']}"
    assert any(image["loaded"] and image["src"].startswith("data:image/png") for image in report["png"]), (
        f"{chapter} shows no matplotlib figure: {report['png']}")
    assert screenshot.stat().st_size > 0
