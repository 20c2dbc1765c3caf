"""The conda environment and the pip packaging describe the same course (conda itself is not installed
here, so environment.yml is checked statically against pyproject.toml)."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text())


def conda_packages():
    """Conda dependencies (strings) by package name, and the list of pip requirements."""
    conda, pip = {}, []
    for dependency in ENVIRONMENT["dependencies"]:
        if isinstance(dependency, dict):
            pip += dependency["pip"]
        else:
            conda[re.split(r"[<>=! ]", dependency, maxsplit=1)[0]] = dependency
    return conda, pip


def test_channels_are_conda_forge_only():
    assert ENVIRONMENT["channels"] == ["conda-forge", "nodefaults"]


def test_conda_brings_python_pip_and_the_dot_program():
    conda, _ = conda_packages()
    assert set(conda) == {"python", "pip", "graphviz"}, "everything else must come from the pip packaging"
    assert conda["python"] == "python" + PYPROJECT["requires-python"]


def test_pip_installs_this_package_with_every_extra():
    _, pip = conda_packages()
    extras = ",".join(sorted(PYPROJECT["optional-dependencies"]))
    assert pip == [f"-e .[{extras}]"]


def test_course_script_installs_the_same_extras():
    script = (ROOT / "course").read_text()
    extras = ",".join(sorted(PYPROJECT["optional-dependencies"]))
    assert f'-e ".[{extras}]"' in script
