"""The conda environment and the pip packaging describe the same course (conda itself is not installed
here, so environment.yml is checked statically against pyproject.toml)."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text())
# The extra whose packages conda installs itself: an MPI library is not a Python package, and pip's MPICH
# wheel next to conda's mpi4py would bring a second MPI.
CONDA_EXTRA = "mpi"


def conda_name(requirement):
    """The package a requirement names: "mpich>=4.1" -> "mpich"."""
    return re.split(r"[<>=! ]", requirement, maxsplit=1)[0]


def conda_packages():
    """Conda dependencies (strings) by package name, and the list of pip requirements."""
    conda, pip = {}, []
    for dependency in ENVIRONMENT["dependencies"]:
        if isinstance(dependency, dict):
            pip += dependency["pip"]
        else:
            conda[conda_name(dependency)] = dependency
    return conda, pip


def test_channels_are_conda_forge_only():
    assert ENVIRONMENT["channels"] == ["conda-forge", "nodefaults"]


def test_conda_brings_python_pip_the_dot_program_and_mpi():
    conda, _ = conda_packages()
    mpi = PYPROJECT["optional-dependencies"][CONDA_EXTRA]
    assert set(conda) == {"python", "pip", "graphviz", *(conda_name(r) for r in mpi)}, (
        "everything else must come from the pip packaging")
    assert conda["python"] == "python" + PYPROJECT["requires-python"]


def test_conda_installs_the_mpi_extra_with_the_same_versions():
    conda, _ = conda_packages()
    for requirement in PYPROJECT["optional-dependencies"][CONDA_EXTRA]:
        assert conda[conda_name(requirement)] == requirement


def test_pip_installs_this_package_with_every_other_extra():
    _, pip = conda_packages()
    extras = ",".join(sorted(set(PYPROJECT["optional-dependencies"]) - {CONDA_EXTRA}))
    assert pip == [f"-e .[{extras}]"]


def test_course_script_installs_the_same_extras():
    script = (ROOT / "course").read_text()
    extras = ",".join(sorted(PYPROJECT["optional-dependencies"]))
    assert f'-e ".[{extras}]"' in script
