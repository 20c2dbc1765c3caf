"""A learner's first minutes, in a real browser.

JupyterLab serves a temporary copy of the course (notebooks/, exercises/, solutions/) as ``./course lab``
does (tools/lab.py: rooted at the course, opening the welcome chapter, the environment's settings, kernel and
style sheet, the shipped notebooks trusted); headless Chromium, driven by Playwright, then

- looks before running anything: the chapter's saved graph drawing is shown, no news pop-up, the file browser
  at the course's root lists exercises/ and solutions/;
- follows the chapter's link to its exercise notebook, whose tab starts with "exercises/";
- runs all cells of the chapter from the Run menu: no cell fails, a graphviz drawing and a matplotlib
  figure are shown;
- runs the solution notebook, whose check shows its rich report: a green box, ✓.

Screenshots land in test-artifacts/browser-*.png.
"""

import importlib.util
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

from minigraph.progress import kernel_environment

REPO = Path(__file__).resolve().parent.parent
COURSE_FOLDERS = ("notebooks", "exercises", "solutions")
WELCOME = "00_welcome.ipynb"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SERVER_START_SECONDS = 180
RUN_ALL_SECONDS = 600
# For the test only, on top of the course's settings: every cell attached to the page (no windowing), so that
# the page shows the whole notebook.
USER_SETTINGS = {"@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"}}
PASSED_GREEN = "rgb(21, 128, 61)"  # the colour of a passed check's box

_spec = importlib.util.spec_from_file_location("course_lab", REPO / "tools" / "lab.py")
lab = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lab)

# Graphviz wraps every drawing in <g id="graph0" class="graph">.
GRAPHVIZ_MARK = 'class="graph"'
KERNEL_IDLE = re.compile(r"^(?!No Kernel).* \| Idle$")
CURRENT_NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"

# What the current notebook shows: outputs with a traceback, the cells' input prompts ("[ ]:", "[*]:", "[3]:"),
# the output images of graphviz (SVG) and matplotlib (PNG), each with its source and whether it decoded, and
# the rich reports of checks (their text and border colour).
PAGE_REPORT_JS = """() => {
    const notebook = document.querySelector('%s');
    const outputs = [...notebook.querySelectorAll('.jp-OutputArea-output')];
    const ofType = mimeType => outputs.filter(output => output.dataset.mimeType === mimeType);
    const images = mimeType => ofType(mimeType).flatMap(output => [...output.querySelectorAll('img')])
        .map(img => ({src: img.src, loaded: img.complete && img.naturalWidth > 0}));
    return {
        errors: [...ofType('application/vnd.jupyter.error'),
                 ...ofType('application/vnd.jupyter.stderr').filter(
                     output => output.textContent.includes('Traceback'))].map(output => output.textContent),
        prompts: [...notebook.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
            .map(prompt => prompt.textContent.trim()),
        svg: images('image/svg+xml'),
        png: images('image/png'),
        checks: ofType('text/html').flatMap(output => [...output.querySelectorAll('div[style*="border-left"]')])
            .map(box => ({text: box.textContent, border: getComputedStyle(box).borderLeftColor})),
    };
}""" % CURRENT_NOTEBOOK

# True once a cell shows a traceback (Run All stops there), or once `expectedRuns` cells
# have an execution number, none is running and every output image has decoded.
RUN_FINISHED_JS = f"""(expectedRuns) => {{
    const report = ({PAGE_REPORT_JS})();
    if (report.errors.length) return true;
    const finished = report.prompts.filter(text => /\\[\\d+\\]/.test(text)).length;
    const images = [...document.querySelectorAll('{CURRENT_NOTEBOOK} .jp-OutputArea-output img')];
    return finished >= expectedRuns && !report.prompts.some(text => text.includes('*'))
        && images.every(img => img.complete);
}}"""

# The text a document tab shows before its file name (the course's style sheet), and the tab's path.
TABS_JS = """() => [...document.querySelectorAll('.lm-DockPanel-tabBar .lm-TabBar-tab')].map(tab => ({
    path: (tab.title.match(/Path: (.*)/) || [null, null])[1],
    before: getComputedStyle(tab.querySelector('.lm-TabBar-tabLabel'), '::before').content,
    current: tab.classList.contains('lm-mod-current'),
}))"""


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


def course_copy(target):
    """A copy of the course's notebooks at ``target``, its shipped notebooks trusted as ./course setup does."""
    for folder in COURSE_FOLDERS:
        shutil.copytree(REPO / folder, target / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return target


@contextmanager
def course_lab(root, workdir):
    """JupyterLab as ``./course lab`` starts it, over ``root``, on 127.0.0.1, with every Jupyter folder of the
    user inside ``workdir`` (the course's settings, kernel and style sheet are the environment's). Yields
    ``(url, token)``; the server is stopped on exit, whatever happened."""
    folders = {name: workdir / name for name in ("config", "data", "runtime", "user-settings", "workspaces",
                                                 "ipython")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    for name, settings in USER_SETTINGS.items():
        (folders["user-settings"] / name).parent.mkdir(parents=True, exist_ok=True)
        (folders["user-settings"] / name).write_text(json.dumps(settings))
    environment = {
        **kernel_environment(),
        "JUPYTER_CONFIG_DIR": str(folders["config"]), "JUPYTER_DATA_DIR": str(folders["data"]),
        "JUPYTER_RUNTIME_DIR": str(folders["runtime"]), "IPYTHONDIR": str(folders["ipython"]),
        "JUPYTERLAB_SETTINGS_DIR": str(folders["user-settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(folders["workspaces"]),
    }
    lab.configure()
    subprocess.run([sys.executable, "-c", "import sys, runpy; from pathlib import Path; "
                    "runpy.run_path(sys.argv[1])['trust']([Path(path) for path in sys.argv[2:]])",
                    str(REPO / "tools" / "lab.py"), *map(str, lab.course_notebooks(root))],
                   env=environment, check=True, timeout=120)
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", *lab.lab_arguments(root), "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.open_browser=False",
               f"--IdentityProvider.token={token}"]
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


@contextmanager
def browser_page(sync_playwright, profile_dir):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile_dir), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1400},
        )
        page = browser.pages[0] if browser.pages else browser.new_page()
        page.set_default_timeout(SERVER_START_SECONDS * 1000)
        try:
            yield page
        finally:
            browser.close()


def screenshot(page, name, scroll_to=None):
    ARTIFACTS.mkdir(exist_ok=True)
    if scroll_to is not None and scroll_to.count():
        scroll_to.first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"browser-{name}.png"))


def wait_for_kernel(page):
    """Until the current notebook's kernel is connected and idle: Run All before that silently runs nothing."""
    page.locator(".jp-StatusBar-TextItem", has_text=KERNEL_IDLE).wait_for()


def run_all(page, expected_runs):
    """Run every cell of the current notebook from the Run menu; returns PAGE_REPORT_JS's report."""
    wait_for_kernel(page)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(RUN_FINISHED_JS, arg=expected_runs, polling=500, timeout=RUN_ALL_SECONDS * 1000)
    return page.evaluate(PAGE_REPORT_JS)


def current_tab(page):
    return next(tab for tab in page.evaluate(TABS_JS) if tab["current"])


def is_graphviz_drawing(image):
    """An SVG output image that decoded and, when its source is inline, was made by graphviz."""
    source = image["src"]
    return image["loaded"] and (source.startswith("blob:") or (
        source.startswith("data:image/svg+xml") and GRAPHVIZ_MARK in urllib.parse.unquote(source)))


def code_cells_to_run(path):
    """How many code cells Run All executes: the non-empty ones."""
    return sum(1 for cell in nbformat.read(path, as_version=4).cells
               if cell.cell_type == "code" and cell.source.strip())


def test_a_learners_first_minutes_in_jupyterlab(sync_playwright, tmp_path):
    root = course_copy(tmp_path / "course")
    drawings = ".jp-OutputArea-output[data-mime-type='image/svg+xml'] img"
    with course_lab(root, tmp_path / "jupyter") as (url, token), \
            browser_page(sync_playwright, tmp_path / "chromium-profile") as page:
        page.goto(f"{url}/?token={token}")  # where ./course lab's browser goes
        wait_for_kernel(page)
        assert current_tab(page)["path"] == f"notebooks/{WELCOME}"

        # Before running anything: the saved drawing is shown, no pop-up asks about news.
        page.locator(f"{CURRENT_NOTEBOOK} {drawings}").first.wait_for()
        before = page.evaluate(PAGE_REPORT_JS)
        screenshot(page, "before-running", page.locator(f"{CURRENT_NOTEBOOK} {drawings}"))
        assert any(map(is_graphviz_drawing, before["svg"])), f"no saved drawing shown: {before['svg']}"
        assert page.get_by_text("official Jupyter news").count() == 0

        # The file browser, at the course's root, shows the three folders.
        page.locator(".jp-BreadCrumbs-home").click()
        page.locator(".jp-DirListing-item", has_text="solutions").wait_for()
        listed = page.locator(".jp-DirListing-itemText").all_inner_texts()
        assert {"notebooks", "exercises", "solutions"} <= set(listed), listed

        # The chapter's link opens its exercise notebook, in a tab marked as the exercises'.
        page.locator(f"{CURRENT_NOTEBOOK} .jp-RenderedMarkdown a", has_text=f"exercises/{WELCOME}").first.click()
        page.wait_for_function(f"() => ({TABS_JS})().some(tab => tab.current && tab.path === 'exercises/{WELCOME}')")
        assert current_tab(page)["before"] == '"exercises/"'
        screenshot(page, "exercise-tab")

        # Run All in the chapter: no cell fails; a drawing and a figure are shown.
        page.locator(".lm-TabBar-tab", has_text=WELCOME).first.click()
        page.wait_for_function(f"() => ({TABS_JS})().some(tab => tab.current && tab.path === 'notebooks/{WELCOME}')")
        expected = code_cells_to_run(root / "notebooks" / WELCOME)
        report = run_all(page, expected)
        screenshot(page, "chapter-run", page.locator(f"{CURRENT_NOTEBOOK} {drawings}"))
        assert report["errors"] == [], "a cell of the chapter failed in JupyterLab:\n" + "\n".join(report["errors"])
        assert len([prompt for prompt in report["prompts"] if re.fullmatch(r"\[\d+\]:", prompt)]) == expected
        assert any(map(is_graphviz_drawing, report["svg"])), f"no graphviz drawing: {report['svg']}"
        assert any(image["loaded"] and image["src"].startswith("data:image/png") for image in report["png"]), (
            f"no matplotlib figure: {report['png']}")

        # The solution notebook: its check's report is a green box with a ✓.
        page.goto(f"{url}/lab/tree/solutions/{WELCOME}?token={token}")
        page.wait_for_function(f"() => ({TABS_JS})().some(tab => tab.current && tab.path === 'solutions/{WELCOME}')")
        assert current_tab(page)["before"] == '"solutions/"'
        report = run_all(page, code_cells_to_run(root / "solutions" / WELCOME))
        screenshot(page, "check-passed", page.locator(f"{CURRENT_NOTEBOOK} .jp-OutputArea-output"))
        assert report["errors"] == []
        assert report["checks"] and all(check["text"].startswith("✓ Exercise 0.1") for check in report["checks"])
        assert {check["border"] for check in report["checks"]} == {PASSED_GREEN}
