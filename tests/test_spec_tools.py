"""The specs are clean under the tools their users run: Redocly CLI's recommended ruleset
(0 errors for every OpenAPI document) and the AsyncAPI CLI's ``validate`` (0 errors).

Both come from npm at the versions pinned by ``.ci/spec-tools/package-lock.json``,
installed into ``.ci/spec-tools/node_modules`` (``.ci/run`` does it with ``npm ci``; this
module does the same when they are missing, so the README's test command covers it).
Their telemetry is switched off: the tests reach nothing but loopback and the registry.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO

TOOLS = REPO / ".ci" / "spec-tools"
BIN = TOOLS / "node_modules" / ".bin"
SPECS = REPO / "specs"
OPENAPI = sorted(p.relative_to(REPO) for p in (SPECS / "openapi").rglob("*.yaml"))
ASYNCAPI = sorted(p.relative_to(REPO) for p in (SPECS / "asyncapi").glob("*.yaml"))


@pytest.fixture(scope="module")
def tool_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The installed tools' environment: no telemetry, no update checks."""
    if not (BIN / "redocly").exists() or not (BIN / "asyncapi").exists():
        npm = shutil.which("npm")
        assert npm is not None, "npm is needed to install the spec tools (.ci/spec-tools)"
        subprocess.run(
            [npm, "ci", "--prefix", str(TOOLS), "--no-audit", "--no-fund", "--loglevel=error"],
            check=True,
            timeout=900,
        )
    home = tmp_path_factory.mktemp("spec-tools-home")
    metrics = home / "asyncapi-analytics.json"
    metrics.write_text(
        json.dumps({"analyticsEnabled": "false", "infoMessageShown": "true", "userID": "ci"})
    )
    return {
        **os.environ,
        "HOME": str(home),
        "CI": "true",
        "REDOCLY_TELEMETRY": "off",
        "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
        "ASYNCAPI_METRICS_CONFIG_PATH": str(metrics),
        "NO_UPDATE_NOTIFIER": "1",
    }


def test_every_openapi_document_is_clean_under_redocly(tool_env: dict[str, str]) -> None:
    assert len(OPENAPI) >= 12  # the services, the gateway, the providers, the mesh admin
    result = subprocess.run(
        [
            str(BIN / "redocly"),
            "lint",
            "--config",
            str(TOOLS / "redocly.yaml"),
            "--format",
            "json",
            *map(str, OPENAPI),
        ],
        cwd=REPO,
        env=tool_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    reports = _json_objects(result.stdout)
    assert len(reports) == len(OPENAPI)  # one report per document: each was linted
    errors = [
        f"{p['location'][0]['source']['ref']}#{p['location'][0]['pointer']}: "
        f"{p['message']} [{p['ruleId']}]"
        for report in reports
        for p in report["problems"]
        if p["severity"] == "error"
    ]
    assert errors == []
    assert sum(report["totals"]["errors"] for report in reports) == 0
    assert result.returncode == 0, result.stderr[-2000:]


def _json_objects(text: str) -> list[dict[str, Any]]:
    """Redocly prints one JSON report per document, back to back."""
    decoder, found, at = json.JSONDecoder(), [], text.find("{")
    while at != -1:
        report, end = decoder.raw_decode(text, at)
        found.append(report)
        at = text.find("{", end)
    return found


@pytest.mark.parametrize("document", ASYNCAPI, ids=str)
def test_asyncapi_document_is_valid_under_the_asyncapi_cli(
    tool_env: dict[str, str], document: Path
) -> None:
    result = subprocess.run(
        [str(BIN / "asyncapi"), "validate", str(document), "--fail-severity", "error"],
        cwd=REPO,
        env=tool_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "is valid" in output
    summary = re.search(r"(\d+) problems? \((\d+) errors?", output)
    assert summary is None or summary.group(2) == "0", output[-3000:]
