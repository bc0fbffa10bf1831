"""``contracts check`` and ``contracts diff``: the committed pacts against the specs, and
each breaking kind of spec change, applied to a temporary copy of the specs, caught with
the pact file, the interaction, the spec file and the JSON pointer named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REPO
from ecom_harness.cli.main import cli
from ecom_harness.harness.contracts import (
    SpecIndex,
    check_pacts,
    diff_specs,
    load_pacts,
)

PACTS = REPO / "contracts"


def _edit(spec_copy: Path, file: str, old: str, new: str) -> None:
    path = spec_copy / file
    text = path.read_text()
    assert old in text, f"{file} no longer holds {old!r}: the test needs a new anchor"
    path.write_text(text.replace(old, new, 1))


def test_committed_pacts_fit_the_shipped_specs() -> None:
    result = CliRunner().invoke(cli, ["contracts", "check"])
    assert result.exit_code == 0, result.output
    assert "0 findings" in result.output


# (file, old text, new text, rule, pact file, interaction prefix, spec pointer)
BREAKING = {
    "field renamed": (
        "openapi/order-svc.yaml",
        '        total_amount:\n          $ref: "#/components/schemas/Amount"\n        currency:',
        '        total:\n          $ref: "#/components/schemas/Amount"\n        currency:',
        "field-removed",
        "api-gateway-order-svc.json",
        "createOrder answered 201",
        "/components/schemas/Order/properties",
    ),
    "type changed": (
        "openapi/order-svc.yaml",
        '        reservation_id:\n          type: [string, "null"]',
        '        reservation_id:\n          type: [integer, "null"]',
        "type-changed",
        "api-gateway-order-svc.json",
        "createOrder answered 201",
        "/components/schemas/Order/properties/reservation_id/type",
    ),
    "status no longer declared": (
        "openapi/order-svc.yaml",
        '        "402":\n          $ref: "#/components/responses/CardDeclined"\n        "409":',
        '        "409":',
        "status-undeclared",
        "api-gateway-order-svc.json",
        "createOrder answered 402",
        "/paths/~1orders/post/responses",
    ),
    "enum value dropped": (
        "openapi/inventory-svc.yaml",
        "enum: [HELD, RELEASED, EXPIRED, COMMITTED]",
        "enum: [HELD, RELEASED, EXPIRED]",
        "enum-value-dropped",
        "order-svc-inventory-svc.json",
        "commitReservation answered 200",
        "/enum",
    ),
    "new required request field": (
        "openapi/shipping-svc.yaml",
        "      required: [order_id, address, items]",
        "      required: [order_id, address, items, carrier_hint]",
        "required-field-added",
        "order-svc-shipping-svc.json",
        "scheduleShipment answered 201",
        "/required",
    ),
    "path renamed": (
        "openapi/inventory-svc.yaml",
        "  /reservations:\n",
        "  /stock-reservations:\n",
        "path-missing",
        "order-svc-inventory-svc.json",
        "reserveStock answered 201",
        "/paths",
    ),
    "channel renamed": (
        "asyncapi/commerce-events.yaml",
        "    address: orders\n",
        "    address: order-events\n",
        "channel-missing",
        "notify-svc-order-svc.json",
        "order.placed on orders",
        "/channels",
    ),
}


@pytest.mark.parametrize("change", sorted(BREAKING))
def test_check_catches_each_breaking_change(change: str, spec_copy: Path) -> None:
    file, old, new, rule, pact, interaction, pointer = BREAKING[change]
    _edit(spec_copy, file, old, new)
    findings = check_pacts(load_pacts(PACTS), SpecIndex(spec_copy))
    caught = [
        f
        for f in findings
        if f.rule == rule
        and f.pact.endswith(pact)
        and f.interaction.startswith(interaction)
        and f.spec == f"specs/{file}"
        and f.pointer.endswith(pointer)
    ]
    assert caught, "\n".join(map(str, findings)) or "no finding at all"
    # The same change through the command: one line naming all four places, exit 1.
    result = CliRunner().invoke(
        cli, ["contracts", "check", "--specs", str(spec_copy), "--format", "json"]
    )
    assert result.exit_code == 1, result.output
    rows = json.loads(result.stdout)
    assert any(r["rule"] == rule and r["pact"].endswith(pact) for r in rows)


def test_check_accepts_a_change_that_breaks_no_consumer(spec_copy: Path) -> None:
    _edit(
        spec_copy,
        "openapi/order-svc.yaml",
        '        failure_reason:\n          $ref: "#/components/schemas/FailureReason"',
        '        failure_reason:\n          $ref: "#/components/schemas/FailureReason"\n'
        "        gift_note:\n          type: [string, 'null']",
    )
    assert check_pacts(load_pacts(PACTS), SpecIndex(spec_copy)) == []


def test_a_pact_that_is_not_json_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "a-b.json").write_text("{not json")
    result = CliRunner().invoke(cli, ["contracts", "check", "--pacts", str(tmp_path)])
    assert result.exit_code == 2
    assert "a-b.json: not JSON" in result.output


def test_diff_names_breaking_changes_and_the_consumers_they_break(spec_copy: Path) -> None:
    file, old, new, *_ = BREAKING["field renamed"]
    _edit(spec_copy, file, old, new)
    pacts = load_pacts(PACTS)
    changes = diff_specs(SpecIndex(REPO / "specs"), SpecIndex(spec_copy), pacts)
    removed = [c for c in changes if c.rule == "field-removed"]
    assert removed and removed[0].breaking
    assert "api-gateway" in removed[0].consumers
    assert removed[0].pointer == "/components/schemas/Order/properties"
    added = [c for c in changes if c.rule == "field-added"]
    assert added and not added[0].breaking
    result = CliRunner().invoke(cli, ["contracts", "diff", str(REPO / "specs"), str(spec_copy)])
    assert result.exit_code == 1
    assert "BREAKING" in result.output and "breaks " in result.output


def test_diff_of_a_non_breaking_change_exits_0(spec_copy: Path) -> None:
    _edit(
        spec_copy,
        "openapi/order-svc.yaml",
        '        failure_reason:\n          $ref: "#/components/schemas/FailureReason"',
        '        failure_reason:\n          $ref: "#/components/schemas/FailureReason"\n'
        "        gift_note:\n          type: [string, 'null']",
    )
    result = CliRunner().invoke(cli, ["contracts", "diff", str(REPO / "specs"), str(spec_copy)])
    assert result.exit_code == 0, result.output
    assert "new field 'gift_note'" in result.output


def test_diff_against_a_git_revision_reads_that_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(cli, ["contracts", "diff", "HEAD", "specs"])
    assert result.exit_code in (0, 1), result.output  # a working tree may have changes
    assert "changes," in result.output
    unknown = CliRunner().invoke(cli, ["contracts", "diff", "no-such-rev-xyz", "specs"])
    assert unknown.exit_code == 2
    assert "neither a spec file or folder nor a git revision" in unknown.output
