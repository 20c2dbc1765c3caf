"""The ./course script as a learner meets it: its help, a symlink to it, paths relative to where it is run,
a folder it cannot write, colours only on a terminal, and a virtual environment left behind by a move."""

import os
import pty
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COURSE = REPO / "course"
ESCAPE = "\x1b["


def course(*arguments, cwd=REPO, env=None, script=COURSE):
    return subprocess.run([str(script), *arguments], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_help_documents_every_command_and_option():
    result = course("help")
    assert result.returncode == 0
    for text in ("./course lab", "./course test", "./course progress [--timeout S]", "default 120", "./course setup",
                 "./course execute [--jobs N]", "./course exercises [--check]", "relative to the folder you run",
                 "symlink", "PYTHON", "MINIGRAPH_DATA", "MINIGRAPH_TEST_WORKERS", "NO_COLOR"):
        assert text in result.stdout, text
    assert "set -euo" not in result.stdout and ESCAPE not in result.stdout


def test_it_runs_through_a_symlink_from_another_folder(tmp_path):
    link = tmp_path / "bin" / "course"
    link.parent.mkdir()
    link.symlink_to(COURSE)
    result = course("exercises", "--check", cwd=tmp_path, script=link)
    assert result.returncode == 0, result.stderr
    assert "exercise notebooks are up to date" in result.stdout
    assert "rebuilding" not in result.stderr  # the repository's own environment fits it


def test_paths_are_relative_to_the_callers_folder():
    result = course("progress", "--timeout", "120", "00_welcome.ipynb", cwd=REPO / "exercises")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("00_welcome.ipynb\n  0.1    the mean image of a digit  not attempted\n")
    missing = course("progress", "absent.ipynb", cwd=REPO / "exercises")
    assert missing.returncode == 1 and "error: absent.ipynb is neither a notebook" in missing.stderr


def as_another_user():
    """A command prefix that drops root's right to write anywhere, or None when not root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot test an unwritable folder")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_a_folder_it_cannot_write_is_named():
    with tempfile.TemporaryDirectory() as scratch:  # in /tmp, not in pytest's folder that only root can enter
        os.chmod(scratch, 0o755)
        folder = Path(scratch) / "course"
        folder.mkdir()
        for name in ("course", "pyproject.toml"):
            shutil.copy2(REPO / name, folder / name)
        prefix = as_another_user()
        if not prefix:
            folder.chmod(0o555)
        result = subprocess.run([*prefix, str(folder / "course"), "setup"], cwd=scratch, capture_output=True,
                                text=True, env={**os.environ, "HOME": scratch}, timeout=60)
        folder.chmod(0o755)
        assert result.returncode == 1, result.stderr
        assert f"cannot write here: {folder} is not writable by" in result.stderr
        assert "python3-venv" not in result.stderr and not (folder / ".venv").exists()


def run_on_a_terminal(arguments, env):
    """stderr of ./course run with a pseudo-terminal as its stderr (and stdout)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(str(COURSE), [str(COURSE), *arguments], env)
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.waitpid(pid, 0)
    return output.decode()


def test_colour_codes_only_on_a_terminal():
    plain = course("no-such-command")
    assert plain.returncode == 1 and plain.stderr == "[course] error: unknown command 'no-such-command'; try ./course help\n"
    coloured = run_on_a_terminal(["no-such-command"], dict(os.environ))
    assert f"{ESCAPE}1;31m[course] error:{ESCAPE}0m unknown command" in coloured
    assert ESCAPE not in run_on_a_terminal(["no-such-command"], {**os.environ, "NO_COLOR": "1"})


def test_a_virtual_environment_made_for_another_folder_is_rebuilt(tmp_path):
    """A copy of the course carries a .venv whose scripts point to the old folder: setup says so and removes it
    (here it then stops, finding no Python to build a new one with, so that the test stays fast)."""
    folder = tmp_path / "moved course"
    (folder / ".venv" / "bin").mkdir(parents=True)
    for name in ("course", "pyproject.toml"):
        shutil.copy2(REPO / name, folder / name)
    (folder / ".venv" / "bin" / "python").symlink_to(sys.executable)
    (folder / ".venv" / "bin" / "jupyter").write_text("#!/the/old/place/.venv/bin/python\n")
    (folder / ".venv" / ".minigraph-installed").write_text("stamp\n")
    tools = tmp_path / "tools"  # a PATH with the shell's tools and no python
    tools.mkdir()
    for tool in ("bash", "env", "head", "grep", "mktemp", "rm", "cat", "dirname", "readlink", "id"):
        (tools / tool).symlink_to(shutil.which(tool))
    result = subprocess.run(["bash", str(folder / "course"), "setup"], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": str(tools), "HOME": str(tmp_path)}, timeout=60)
    assert "the virtual environment .venv was made for another folder (the course was moved or copied): " \
           "rebuilding it" in result.stderr
    assert not (folder / ".venv").exists()
    assert result.returncode == 1 and "Python 3.10 or newer is needed" in result.stderr
