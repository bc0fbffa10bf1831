"""`ecom-harness ui` refuses what cannot work in one line, before starting anything
(the running UI is driven in test_viewer_browser.py)."""

from __future__ import annotations

import socket
from pathlib import Path

from click.testing import CliRunner

from ecom_harness.cli.main import cli


def test_a_busy_port_is_one_line_and_exit_1() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["ui", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"ecom-harness: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


def test_a_broken_scenario_file_is_named_with_its_pointer(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\ntitle: 7\n")
    result = CliRunner().invoke(cli, ["ui", "--port", "0", "--scenarios", str(tmp_path)])
    assert result.exit_code == 2  # a set-up error, as for `run`
    (line,) = result.output.strip().splitlines()
    assert line.startswith("ecom-harness: ") and "bad.yaml" in line
    assert "'description' is a required property" in line


def test_options_the_mesh_cannot_use_are_refused() -> None:
    result = CliRunner().invoke(cli, ["ui", "--real", "order-svc=http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "--kafka" in result.output and len(result.output.strip().splitlines()) == 1
    usage = CliRunner().invoke(cli, ["ui", "--port", "70000"])
    assert usage.exit_code == 2
