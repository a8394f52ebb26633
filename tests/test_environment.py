"""environment.yml and pyproject.toml declare the same dependencies; constraints.txt pins
every one of them, and environment.yml installs with it."""

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def normalise(requirement: str) -> str:
    name, rest = re.match(r"([A-Za-z0-9_.\-]+)(.*)", requirement.strip()).groups()
    return name.lower().replace("_", "-") + rest.replace(" ", "")


def test_environment_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip, "environment.yml installs the package itself"
    assert "-c constraints.txt" in pip, "environment.yml installs the versions the suite passed on"
    options = {"-e .", "-c constraints.txt"}
    assert {normalise(r) for r in pip if r not in options} == {normalise(r) for r in declared}
    assert "python=3.11" in environment["dependencies"]


def test_constraints_pin_every_declared_dependency():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    lines = [
        line
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    pinned = dict(line.split("==") for line in lines)
    pinned = {name.lower().replace("_", "-"): version for name, version in pinned.items()}
    assert len(pinned) == len(lines), "one name==version a line"
    for requirement in map(Requirement, declared):
        name = requirement.name.lower().replace("_", "-")
        assert name in pinned, f"constraints.txt does not pin {name}: run `make lock`"
        assert requirement.specifier.contains(pinned[name]), (requirement, pinned[name])
