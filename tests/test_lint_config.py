"""``specs lint`` on a user's own spec, as specs are found in the wild (small documents
shaped like Twilio's published ones): correctness always, the platform's house
conventions only for its own specs or where a config asks; a config sets each rule to
error, warn or off, and only errors fail the run."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ecom_harness.cli.main import cli
from ecom_harness.specs import shipped_spec

WILD = Path(__file__).parent / "fixtures" / "wild"
API = WILD / "twilio_api_v2010_small.yaml"
MESSAGING = WILD / "twilio_messaging_v1_small.yaml"


def lint(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["specs", "lint", *args])
    return result.exit_code, result.stdout, result.stderr


def rules_of(output: str) -> list[str]:
    return [line.rsplit("[", 1)[1].rstrip("]") for line in output.splitlines() if "[" in line]


@pytest.fixture(autouse=True)
def in_empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test runs where no config is, unless it writes one."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_users_spec_gets_correctness_rules_only() -> None:
    code, out, _ = lint(str(API), str(MESSAGING))
    assert code == 1
    found = set(rules_of(out))
    assert found == {"example-invalid"}, out  # no operation-id-case, no example-missing
    assert 'null is not one of "VERBAL", "WEB_FORM", "PAPER_FORM", "VIA_TEXT" or' not in out
    assert '"VERBAL", "WEB_FORM", "PAPER_FORM", "VIA_TEXT", "MOBILE_QR_CODE"' in out


def test_the_platforms_own_spec_keeps_its_house_conventions(tmp_path: Path) -> None:
    spec = tmp_path / "order-svc.yaml"
    text = shipped_spec("order-svc").read_text(encoding="utf-8")
    spec.write_text(text.replace("operationId: createOrder", "operationId: CreateOrder", 1))
    code, out, _ = lint(str(spec))
    assert code == 1
    assert rules_of(out) == ["operation-id-case"], out


def test_pyproject_asks_for_house_conventions_and_tunes_rules(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.ecom-harness.lint]\n"
        "house-conventions = true\n"
        "[tool.ecom-harness.lint.rules]\n"
        'example-invalid = "warn"\n'
        'example-missing = "off"\n'
        'engine-answers = "off"\n'
        'integer-bounds = "off"\n',
        encoding="utf-8",
    )
    code, out, err = lint(str(API))
    assert code == 1  # operation-id-case is an error now
    assert set(rules_of(out)) == {"operation-id-case", "example-invalid"}, out
    invalid = [line for line in out.splitlines() if "[example-invalid]" in line]
    assert invalid and all(": warning: " in line for line in invalid)
    assert "2 errors, 2 warnings" in err


def test_only_errors_fail_the_run(tmp_path: Path) -> None:
    config = tmp_path / "ecom-harness.toml"
    config.write_text('[lint.rules]\nexample-invalid = "warn"\n', encoding="utf-8")
    code, out, err = lint(str(API), str(MESSAGING))
    assert code == 0, out
    assert "0 errors" in err and "warnings" in err
    code, out, _ = lint("--config", str(config), str(API))
    assert code == 0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[lint.rules]\nno-such-rule = "warn"\n', "unknown rule 'no-such-rule'"),
        ('[lint.rules]\nexample-invalid = "loud"\n', "must be one of error, warn, off"),
        ("[lint\n", "not valid TOML"),
    ],
)
def test_a_bad_config_is_one_line_and_exit_2(tmp_path: Path, text: str, words: str) -> None:
    (tmp_path / "ecom-harness.toml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["specs", "lint", str(API)])
    assert result.exit_code == 2, result.output
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
