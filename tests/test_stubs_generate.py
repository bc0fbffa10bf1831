"""``ecom-harness stubs generate``: what every export says it was made from, ``--check``
telling a stale export, and bad input as one line with exit 2 -- never a user's file
overwritten."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from ecom_harness.cli.main import cli
from ecom_harness.stubs.exporters import FORMATS, MANIFEST, generate

COMPONENT_FOR = {"events-python": "kafka"}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["stubs", "generate", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_export_names_the_spec_versions_it_was_made_from(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / "export"
    code, stdout, _ = run(COMPONENT_FOR.get(fmt, "payment-svc"), "--format", fmt, "--out", str(out))
    assert code == 0, stdout
    manifest = orjson.loads((out / MANIFEST).read_bytes())
    assert manifest["format"] == fmt
    main_spec = (
        "asyncapi/commerce-events.yaml" if fmt == "events-python" else ("openapi/payment-svc.yaml")
    )
    entry = manifest["specs"][main_spec]
    assert entry["version"] == "1.0.0" if fmt == "events-python" else entry["version"] == "0.1.0"
    assert len(entry["sha256"]) == 64
    for relative in manifest["files"]:
        assert (out / relative).is_file(), relative
    assert f"{entry['version']}" in stdout
    code, stdout, _ = run("--check", str(out))
    assert (code, stdout.strip()) == (
        0,
        f"{out}: up to date ({fmt} of {manifest['components'][0]})",
    )


def test_check_tells_a_stale_export_and_how_to_regenerate(spec_copy: Path, tmp_path: Path) -> None:
    """An export made from an older order-svc spec (version and content differ from the
    shipped one) is stale; regenerating makes it current again."""
    spec = spec_copy / "openapi" / "order-svc.yaml"
    spec.write_text(spec.read_text().replace("version: 0.1.0", "version: 0.0.9", 1))
    out = tmp_path / "bundle"
    generate(["order-svc"], "bundle", out, root=spec_copy)
    code, stdout, stderr = run("--check", str(out))
    assert code == 1
    assert f"{out}: stale: openapi/order-svc.yaml: exported from order-svc 0.0.9" in stdout
    assert "now order-svc 0.1.0" in stdout
    assert "inventory-svc" not in stdout  # unchanged dependencies are not reported
    assert f"ecom-harness stubs generate order-svc --format bundle --out {out}" in stderr
    assert run("order-svc", "--format", "bundle", "--out", str(out))[0] == 0
    assert run("--check", str(out))[0] == 0


def test_regenerating_replaces_its_own_files_and_keeps_the_users(tmp_path: Path) -> None:
    out = tmp_path / "mocks"
    assert run("order-svc", "stripe", "--format", "wiremock", "--out", str(out))[0] == 0
    stripe_mappings = list((out / "stripe" / "mappings").glob("*.json"))
    assert stripe_mappings
    (out / "NOTES.md").write_text("ours")
    assert run("order-svc", "--format", "wiremock", "--out", str(out))[0] == 0
    assert not any(p.exists() for p in stripe_mappings)  # the earlier export's, gone
    assert list((out / "order-svc" / "mappings").glob("*.json"))
    assert (out / "NOTES.md").read_text() == "ours"


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch-svc"], "ecom-harness: unknown component 'nosuch-svc' (known: client, "),
        (["order-svc", "--format", "pact"], "ecom-harness: unknown format 'pact' (known: bundle"),
        (["redis"], "ecom-harness: redis has no spec (a cache)"),
        (["client"], "ecom-harness: client has no spec (a client)"),
        (["kafka"], "ecom-harness: kafka has no OpenAPI spec (its spec is asyncapi/"),
        (["user-svc", "--format", "events-python"], "ecom-harness: user-svc: neither publishes"),
        (["api-gateway", "--format", "events-python"], "ecom-harness: api-gateway: neither"),
        ([], "ecom-harness: name at least one COMPONENT"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _, stderr = run(*args, "--out", str(out))
    assert code == 2
    assert _one_line(stderr).startswith(message)
    assert not out.exists()  # nothing written


def test_a_directory_that_is_not_an_export_is_never_written_into(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my own readme")
    code, _, stderr = run("order-svc", "--format", "bundle", "--out", str(mine))
    assert code == 2
    assert _one_line(stderr) == (
        f"ecom-harness: --out {mine}: exists and is not an earlier export "
        f"(no {MANIFEST}); refusing to write into it"
    )
    assert [p.name for p in mine.iterdir()] == ["README.md"]
    assert (mine / "README.md").read_text() == "my own readme"


def test_an_export_never_overwrites_a_file_it_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("order-svc", "--format", "wiremock", "--out", str(out))[0] == 0
    (out / "Dockerfile").write_text("the user's")  # a bundle would write one
    code, _, stderr = run("order-svc", "--format", "bundle", "--out", str(out))
    assert code == 2
    assert "Dockerfile exists and was not written by an export" in _one_line(stderr)
    assert (out / "Dockerfile").read_text() == "the user's"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["order-svc"], "ecom-harness: --out DIR is required (or --check DIR)"),
        (
            ["--check", "/nonexistent/export"],
            "ecom-harness: /nonexistent/export: no such directory",
        ),
    ],
)
def test_missing_or_unusable_directories(args: list[str], message: str) -> None:
    code, _, stderr = run(*args)
    assert (code, _one_line(stderr)) == (2, message)


def test_check_refuses_a_directory_that_is_not_an_export(tmp_path: Path) -> None:
    code, _, stderr = run("--check", str(tmp_path))
    assert (code, _one_line(stderr)) == (
        2,
        f"ecom-harness: {tmp_path}: not an export (no {MANIFEST})",
    )


def test_the_help_names_every_format() -> None:
    from ecom_harness.cli.stubs_generate import FORMAT_NAMES

    assert list(FORMAT_NAMES) == list(FORMATS)


def test_an_out_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    code, _, stderr = run("order-svc", "--out", str(target))
    assert (code, _one_line(stderr)) == (
        2,
        f"ecom-harness: --out {target}: exists and is not a directory",
    )
    assert target.read_text() == "keep me"


def test_regenerating_a_bundle_keeps_the_settings_its_users_edited(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    assert run("inventory-svc", "--out", str(out))[0] == 0
    (out / "stub.toml").write_text((out / "stub.toml").read_text() + "latency_ms = 5\n")
    edited = (out / "stub.toml").read_text()
    (out / "README.md").write_text("stale readme")  # generated: edited or not, it is ours
    result = CliRunner().invoke(cli, ["stubs", "generate", "inventory-svc", "--out", str(out)])
    assert result.exit_code == 2  # the README was edited too: nothing is written
    assert "README.md was edited since the export; move it away" in result.stderr
    (out / "README.md").unlink()
    result = CliRunner().invoke(cli, ["stubs", "generate", "inventory-svc", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == "kept stub.toml: edited since the last export"
    assert (out / "stub.toml").read_text() == edited
    assert "# Stub of inventory-svc" in (out / "README.md").read_text()
    assert run("--check", str(out))[0] == 0


def test_events_python_without_the_codegen_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [n for n in sys.modules if n.startswith("asyncapi_python_codegen")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.setitem(sys.modules, "asyncapi_python_codegen", None)
    monkeypatch.setitem(sys.modules, "asyncapi_python_codegen.generators.messages", None)
    code, _, stderr = run("kafka", "--format", "events-python", "--out", str(tmp_path / "e"))
    assert (code, _one_line(stderr)) == (
        2,
        "ecom-harness: --format events-python needs asyncapi-python's codegen: "
        "pip install 'ecom-harness[codegen]'",
    )
