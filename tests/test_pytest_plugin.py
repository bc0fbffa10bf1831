"""The pytest plugin as another team uses it: a test file of a project of its own, run
by pytest with ecom-harness installed (the ``pytest11`` entry point loads the plugin),
against the whole mesh and against a chosen set of stubs."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# The other team's project has ecom-harness, not this repo's test tools: schemathesis and
# hypothesis register pytest plugins too, and cost seconds of start-up in each run.
RUN = ("-p", "no:cacheprovider", "-p", "no:schemathesis", "-p", "no:hypothesispytest", "-q")

MESH_TESTS = """
import httpx
import pytest


def test_the_mesh_yields_every_address(ecom_mesh):
    assert {"api-gateway", "order-svc", "stripe", "admin"} <= set(ecom_mesh.urls)
    assert "order-svc->inventory-svc" in ecom_mesh.urls
    assert httpx.get(ecom_mesh.entry_url + "/health").json()["status"] == "ok"


def test_the_journal_shows_every_hop(ecom_mesh, ecom_journal):
    answer = httpx.get(ecom_mesh.entry_url + "/v1/products/SKU-1001")
    assert answer.status_code == 200, answer.text
    edges = [i.edge for i in ecom_journal.interactions()]
    assert edges[-1] == "client->api-gateway"
    assert "api-gateway->catalog-svc" in edges or answer.headers.get("x-cache") == "HIT"


@pytest.mark.ecom_fault("client->api-gateway", kind="error", status=503, body={"down": True})
def test_a_fault_for_one_test(ecom_mesh, ecom_journal):
    answer = httpx.get(ecom_mesh.entry_url + "/health")
    assert (answer.status_code, answer.json()) == (503, {"down": True})
    assert ecom_journal.interactions()[0].fault == "error 503"


def test_the_fault_is_gone_in_the_next_test(ecom_mesh):
    assert httpx.get(ecom_mesh.entry_url + "/health").status_code == 200


def test_one_stub(ecom_stub):
    catalog = ecom_stub("catalog-svc")
    answer = catalog.client(**{"X-Service-Token": "t"}).get("/products/SKU-1001")
    assert answer.status_code == 200 and answer.json()["sku"] == "SKU-1001"
"""

STUB_TESTS = """
import httpx
import pytest


def test_only_the_chosen_stubs_run(ecom_mesh):
    assert sorted(ecom_mesh.urls) == ["inventory-svc", "payment-svc"]


def test_calls_to_a_stub_are_journaled(ecom_stub, ecom_journal):
    inventory = ecom_stub("inventory-svc")
    client = inventory.client(**{"X-Service-Token": "t"})
    assert client.get("/stock/SKU-1001").status_code == 200
    [seen] = inventory.interactions()
    assert (seen.edge, seen.operation_id, seen.status) == ("client->inventory-svc", "getStock", 200)


@pytest.mark.ecom_fault("payment-svc", "timeout")
def test_a_timeout_on_one_stub(ecom_stub):
    payments = ecom_stub("payment-svc")
    with pytest.raises(httpx.ReadTimeout):
        payments.client().get("/health", timeout=0.5)
    assert ecom_stub("inventory-svc").client().get("/health").status_code == 200


@pytest.mark.ecom_fault("stripe", "reset")
def test_a_fault_on_an_edge_that_is_not_there():
    pass
"""


def test_a_project_uses_the_whole_mesh(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checkout=MESH_TESTS)
    result = pytester.runpytest_subprocess(*RUN)
    result.assert_outcomes(passed=5)


def test_a_project_uses_chosen_stubs(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\necom_stubs = inventory-svc, payment-svc\n")
    pytester.makepyfile(test_inventory=STUB_TESTS)
    result = pytester.runpytest_subprocess(*RUN)
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*ecom_fault: no edge 'client->stripe'*"])


def test_an_unknown_stub_is_one_usage_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(ecom_mesh):\n    pass\n")
    result = pytester.runpytest_subprocess(*RUN, "--ecom-stubs", "ordr-svc")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*--ecom-stubs: unknown component(s) ordr-svc (known: *"])
