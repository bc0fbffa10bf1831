"""One import name once installed, and the specs found from an editable install and from
a built wheel alike."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO
from ecom_harness.specs import spec_root

# Every spec document in the checkout: an install must find (and ship) each one.
SPEC_FILES = len(list((REPO / "specs").rglob("*.yaml")))
SCENARIOS = sorted((REPO / "harness" / "scenarios").glob("*.yaml"))

_PROBE = (
    "import json, ecom_harness.specs as s;"
    "r = s.lint_specs();"
    "print(json.dumps({'root': str(s.spec_root()), 'files': r.files, 'ok': r.ok,"
    " 'module': s.__file__}))"
)


def _probe(cwd: Path, pythonpath: str | None = None) -> dict[str, object]:
    env = {"PATH": "/usr/bin:/bin"} | ({"PYTHONPATH": pythonpath} if pythonpath else {})
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_editable_install_finds_the_repo_specs(tmp_path: Path) -> None:
    assert spec_root() == REPO / "specs"
    found = _probe(tmp_path)  # outside the checkout: only the install can resolve it
    assert found["root"] == str(REPO / "specs")
    assert found["ok"] is True and found["files"] == SPEC_FILES


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("ecom_harness-*.whl")
    return built


def test_wheel_adds_one_import_name_and_ships_the_specs(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"ecom_harness"}
    for expected in (
        "ecom_harness/specs/topology.yaml",
        "ecom_harness/specs/openapi/external/stripe.yaml",
        "ecom_harness/specs/asyncapi/commerce-events.yaml",
        "ecom_harness/specs/lint/vendor/asyncapi-3.0.0.schema.json",
        "ecom_harness/py.typed",
        "ecom_harness/cli/main.py",
        "ecom_harness/harness/scenario.schema.json",
        *(f"ecom_harness/harness/scenarios/{p.name}" for p in SCENARIOS),
        # the committed pacts, which `contracts check|verify` and `run` use by default
        *(f"ecom_harness/contracts/{p.name}" for p in (REPO / "contracts").glob("*.json")),
        "ecom_harness/harness/contracts/check.py",
        "ecom_harness/harness/viewer/assets/player.js",
        "ecom_harness/harness/viewer/assets/player.css",
        "ecom_harness/harness/viewer/assets/ui.js",
        "ecom_harness/harness/viewer/assets/page.html",
    ):
        assert expected in names


def test_wheel_finds_its_own_specs(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    zipfile.ZipFile(wheel).extractall(site)
    found = _probe(tmp_path, pythonpath=str(site))
    assert found["module"] == str(site / "ecom_harness" / "specs" / "__init__.py")
    assert found["root"] == str(site / "ecom_harness" / "specs")
    assert found["ok"] is True and found["files"] == SPEC_FILES


def test_wheel_builds_the_player_from_its_own_assets(wheel: Path, tmp_path: Path) -> None:
    """The scenario player's CSS and JS come from the installed package, not the checkout."""
    site = tmp_path / "site-packages"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import ecom_harness.harness.viewer as v, ecom_harness.specs as s;"
        "html = v.report_html('t', s.load_topology(), []);"
        "print(v.__file__, len(html), 'EcomPlayer' in html, '.tp-edge' in html)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert out[0] == str(site / "ecom_harness" / "harness" / "viewer" / "__init__.py")
    assert out[2:] == ["True", "True"]
