"""The course's JupyterLab: prepared by ``./course setup``, started by ``./course lab``.

    python tools/lab.py prepare          # kernel, settings and trusted notebooks (idempotent, fast)
    python tools/lab.py start [ARGS]     # JupyterLab on the repository, opening the welcome chapter

``prepare`` sets up, inside the virtual environment (nothing in the user's own Jupyter settings):

- the ``python3`` kernel with the tests' environment, one BLAS thread (``minigraph.progress``'s
  ``SINGLE_THREADED_BLAS``): on two cores, BLAS threads competing with each other make the chapters several
  times slower and their printed numbers drift from the committed ones;
- JupyterLab settings: no news or update pop-up;
- the course's notebooks (``notebooks/`` and ``solutions/``) trusted, so that their committed graph
  drawings (SVG, which JupyterLab shows only in a trusted notebook) are visible on first open. A notebook
  whose content changed (a ``git pull``) is trusted again; the signatures live in Jupyter's usual database.

- the course's style sheet, ``tools/lab/custom.css`` (the tab of an exercise or a solution notebook starts
  with its folder, as the three share a file name), copied to the environment's default place for it, the
  ``custom`` folder of jupyter_server's static files (a ``custom.css`` in the user's ``~/.jupyter/custom``
  would take precedence).

``start`` runs ``jupyter lab`` rooted at the repository, so that the file browser shows ``notebooks/``,
``exercises/`` and ``solutions/`` and the chapters' links between them work, with the style sheet loaded.
ARGS go to ``jupyter lab``.
"""

import hashlib
import json
import os
import sys
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from jupyter_server import DEFAULT_STATIC_FILES_PATH

from minigraph.progress import SINGLE_THREADED_BLAS, kernel_environment

REPOSITORY = Path(__file__).resolve().parents[1]
STYLE_SHEET = REPOSITORY / "tools" / "lab" / "custom.css"
WELCOME = "notebooks/00_welcome.ipynb"
TRUSTED_FOLDERS = ("notebooks", "solutions")  # the ones shipped with outputs
SETTINGS = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


def prepare(prefix=sys.prefix, repository=REPOSITORY):
    """Kernel environment, settings, style sheet and trust; returns the notebooks it trusted now."""
    configure(prefix)
    # Reading notebooks means importing nbformat, seconds: only when a notebook or the signature store changed.
    notebooks = course_notebooks(repository)
    stamp, digest = Path(prefix) / ".minigraph-trusted", _digest(notebooks)
    if stamp.exists() and stamp.read_text(encoding="utf-8") == digest:
        return []
    trusted = trust(notebooks)
    stamp.write_text(digest, encoding="utf-8")
    return trusted


def configure(prefix=sys.prefix):
    """The environment's JupyterLab settings, ``python3`` kernel and style sheet (written only when they differ)."""
    prefix = Path(prefix)
    _write_json(prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.d" / "minigraph.json", SETTINGS)
    kernel_spec = prefix / "share" / "jupyter" / "kernels" / "python3" / "kernel.json"
    spec = json.loads(kernel_spec.read_text(encoding="utf-8"))
    _write_json(kernel_spec, {**spec, "env": {**spec.get("env", {}), **SINGLE_THREADED_BLAS}})
    _write(Path(DEFAULT_STATIC_FILES_PATH) / "custom" / "custom.css", STYLE_SHEET.read_text(encoding="utf-8"))


def course_notebooks(repository=REPOSITORY):
    """The notebooks shipped with outputs, which are trusted: notebooks/ and solutions/."""
    return [path for folder in TRUSTED_FOLDERS for path in sorted((Path(repository) / folder).glob("*.ipynb"))]


def trust(notebooks):
    """Sign each notebook that is not trusted yet; returns their paths."""
    import nbformat
    from nbformat.sign import NotebookNotary

    notary = NotebookNotary()
    signed = []
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        if not notary.check_signature(notebook):
            notary.sign(notebook)
            signed.append(path)
    return signed


def _digest(notebooks):
    """A digest of the notebooks' bytes and of where Jupyter keeps the signatures."""
    digest = hashlib.sha256(jupyter_data_dir().encode())
    for path in notebooks:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def lab_arguments(root=REPOSITORY):
    """The options of ``jupyter lab`` for the course: rooted at ``root``, opening the welcome chapter, with
    the course's style sheet."""
    return [f"--ServerApp.root_dir={root}", f"--LabApp.default_url=/lab/tree/{WELCOME}", "--LabApp.custom_css=True"]


def start(arguments):
    """Replace this process by JupyterLab, in the environment of the course's kernels (no MPLBACKEND)."""
    command = [sys.executable, "-m", "jupyterlab", *lab_arguments(), *(["--allow-root"] if os.geteuid() == 0 else []),
               *arguments]
    os.execve(command[0], command, kernel_environment())


def _write_json(path, content):
    _write(path, json.dumps(content, indent=1) + "\n")


def _write(path, text):
    """Write ``text`` to ``path`` unless it holds it already."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def main(argv=None):
    command, *arguments = argv if argv is not None else sys.argv[1:] or ["help"]
    if command == "prepare":
        trusted = prepare()
        if trusted:
            print(f"trusted {len(trusted)} course notebook(s), so that JupyterLab shows their saved graph drawings",
                  file=sys.stderr)
        return 0
    if command == "start":
        start(arguments)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
