"""The scenario player in a real browser: Debian's Chromium, driven by Playwright.

`ecom-harness ui` runs as a user starts it (a subprocess, stopped by its own handle). The
test picks each of the four scenarios, clicks Run, and plays the finished run with the
keyboard: every journal entry of the run is highlighted once, in the journal's order,
with its edge lit in the topology. A run against a deliberately broken Stripe has its
failed expectation marked on the payment-svc -> stripe arrow. The `run --html` report
opens from a file:// URL and plays to the end. No console errors anywhere. Screenshots
go to ``out/screenshots`` (or ``$ECOM_TEST_ARTIFACTS``) as test artifacts; the README's
picture is one of them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from conftest import REPO
from ecom_harness.harness.journal import Interaction

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCENARIOS = ["cache-hit", "circuit-breaker", "happy-path", "payment-failure"]
ARTIFACTS = Path(os.environ.get("ECOM_TEST_ARTIFACTS", REPO / "out" / "screenshots"))
CLI = str(Path(sys.executable).parent / "ecom-harness")
VIEWPORT = {"width": 1280, "height": 800}

# Records, on every change of the current step, what the page shows: the step's seq,
# the row highlighted in the sequence diagram and the edges lit in the topology.
WATCH_STEPS = """() => {
  window.__steps = [];
  if (window.__stepWatch) window.__stepWatch.disconnect();
  window.__stepWatch = new MutationObserver(() => {
    const seq = document.getElementById('rows').dataset.currentSeq;
    if (!seq) return;
    const row = document.querySelector('.seq-row.current');
    window.__steps.push({
      seq: Number(seq),
      row: row ? Number(row.dataset.seq) : null,
      edges: (document.querySelector('#stage svg').dataset.activeEdges || '').split(' '),
      lit: [...document.querySelectorAll('#stage svg .tp-edge.active')].map(e => e.dataset.edge),
    });
  });
  window.__stepWatch.observe(
    document.getElementById('rows'), {attributes: true, attributeFilter: ['data-current-seq']});
}"""

# The rendered topology: boxes and their names, as the browser laid them out.
RENDERED_BOXES = """() => [...document.querySelectorAll('#stage svg .tp-node')].map(g => {
  const shape = g.querySelector('rect, path').getBoundingClientRect();
  const text = g.querySelector('text').getBoundingClientRect();
  return {name: g.dataset.node, box: [shape.left, shape.top, shape.right, shape.bottom],
          text: [text.left, text.top, text.right, text.bottom]};
})"""


def overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def inside(a: list[float], b: list[float]) -> bool:
    return a[0] >= b[0] - 0.5 and a[1] >= b[1] - 0.5 and a[2] <= b[2] + 0.5 and a[3] <= b[3] + 0.5


# --- the parts: a browser, the UI as a user runs it, a broken Stripe ----------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is needed (.ci/run installs it)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Watched:
    """A page and every console error or uncaught exception it had."""

    page: Page
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    seen = Watched(page)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.errors.append(f"console: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda exc: seen.errors.append(f"page error: {exc}"))
    yield seen
    context.close()
    assert seen.errors == []


@dataclass
class UiProcess:
    process: subprocess.Popen[str]
    url: str


def start_ui(*options: str) -> UiProcess:
    process = subprocess.Popen(
        [CLI, "ui", "--port", "0", *options],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()  # the first line says where it listens
    found = re.search(r"(http://\S+)", line)
    if not found:
        process.kill()
        pytest.fail(f"ecom-harness ui did not start: {line}{process.stderr.read()}")
    return UiProcess(process, found.group(1))


def stop_ui(ui: UiProcess) -> None:
    ui.process.send_signal(signal.SIGINT)
    try:
        ui.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        ui.process.kill()
        ui.process.wait()
        pytest.fail("ecom-harness ui did not stop on SIGINT")
    assert ui.process.returncode == 0


@pytest.fixture(scope="module")
def ui() -> Iterator[UiProcess]:
    started = start_ui()
    yield started
    stop_ui(started)


async def broken_stripe(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A Stripe that answers every call with a PaymentIntent whose amount is a string:
    the callee's answer breaks the Stripe spec on the payment-svc -> stripe edge."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = orjson.dumps(
        {"id": "pi_broken", "object": "payment_intent", "amount": "lots", "status": "succeeded"}
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def broken_ui() -> Iterator[UiProcess]:
    server = uvicorn.Server(
        uvicorn.Config(broken_stripe, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="broken-stripe")
    thread.start()
    try:
        while not server.started:
            thread.join(0.02)
            assert thread.is_alive(), "the broken Stripe did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        started = start_ui("--real", f"stripe=http://127.0.0.1:{port}")
        yield started
        stop_ui(started)
    finally:
        server.should_exit = True
        thread.join(10)


# --- driving the page -------------------------------------------------------------------


def run_in_page(page: Page, ui: UiProcess, name: str) -> tuple[str, list[int]]:
    """Click the scenario's Run button and wait for the run to finish; returns the run's
    id and the totals the position counter showed while the journal streamed in."""
    page.evaluate(
        """() => { window.__totals = [];
           if (window.__totalWatch) window.__totalWatch.disconnect();
           window.__totalWatch = new MutationObserver(() => {
             const m = document.getElementById('position').textContent.match(/\\/ (\\d+)/);
             if (m && document.getElementById('run-status').textContent === 'running')
               window.__totals.push(Number(m[1]));
           });
           window.__totalWatch.observe(
             document.getElementById('position'), {childList: true, subtree: true}); }"""
    )
    before = page.evaluate("document.body.dataset.lastRun || ''")
    page.click(f'[data-run="{name}"]')
    page.wait_for_function(f"(document.body.dataset.lastRun || '') !== {before!r}", timeout=60_000)
    run_id: str = page.evaluate("document.body.dataset.lastRun")
    totals: list[int] = page.evaluate("window.__totals")
    return run_id, totals


def play_to_the_end(page: Page, total: int) -> list[dict[str, Any]]:
    """Fastest speed, Space to play (the keyboard), until the last step; the steps seen."""
    page.select_option("#speed", "128")
    page.evaluate(WATCH_STEPS)
    page.locator("#rows").focus()
    page.keyboard.press("Space")
    page.wait_for_function(
        f"document.getElementById('position').textContent.trim() === '{total} / {total}'",
        timeout=60_000,
    )
    steps: list[dict[str, Any]] = page.evaluate("window.__steps")
    return steps


def edge_of(entry: dict[str, Any]) -> str:
    if entry["kind"] == "event":
        return f"{entry['publisher']}->kafka"
    return f"{entry['caller']}->{entry['callee']}"


def assert_played_in_order(steps: list[dict[str, Any]], journal: list[dict[str, Any]]) -> None:
    assert [s["seq"] for s in steps] == [e["seq"] for e in journal]  # each once, in order
    for step, entry in zip(steps, journal, strict=True):
        assert step["row"] == entry["seq"], "its row in the sequence diagram is highlighted"
        assert step["edges"][0] == edge_of(entry)
        assert edge_of(entry) in step["lit"], f"#{entry['seq']}: {edge_of(entry)} is lit"


def shoot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(350)  # let the drawer slide in and the step's token arrive
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def journal_of(page: Page, ui: UiProcess, run_id: str) -> list[dict[str, Any]]:
    answer = page.request.get(f"{ui.url}api/runs/{run_id}/journal")
    assert answer.ok
    return [orjson.loads(line) for line in answer.body().splitlines() if line.strip()]


# --- the tests --------------------------------------------------------------------------


def test_each_scenario_runs_streams_and_plays_in_order(ui: UiProcess, watched: Watched) -> None:
    page = watched.page
    page.goto(ui.url)
    page.wait_for_selector("body[data-ready=true]")
    tree = page.locator("#tree")
    assert tree.locator("summary").all_inner_texts() == ["Examples", "E-Commerce Microservices"]
    assert (
        sorted(
            tree.locator("[data-scenario]").evaluate_all(
                "items => items.map(i => i.dataset.scenario)"
            )
        )
        == SCENARIOS
    )

    boxes = page.evaluate(RENDERED_BOXES)  # what the browser drew at 1280x800
    for i, a in enumerate(boxes):
        assert inside(a["text"], a["box"]), f"{a['name']}'s name sticks out of its box"
        for b in boxes[i + 1 :]:
            assert not overlap(a["box"], b["box"]), f"{a['name']} and {b['name']} overlap"
            assert not overlap(a["text"], b["text"]), f"{a['name']}, {b['name']}: labels overlap"

    for name in SCENARIOS:
        run_id, totals = run_in_page(page, ui, name)
        journal = journal_of(page, ui, run_id)
        assert journal, f"{name}: an empty journal"
        assert page.locator("#run-status").inner_text() == "passed", name
        assert totals and totals == sorted(totals) and len(set(totals)) > 1, (
            f"{name}: the journal streamed in entry by entry while it ran ({totals})"
        )
        assert page.locator("#position").inner_text() == f"0 / {len(journal)}"
        steps = play_to_the_end(page, len(journal))
        assert_played_in_order(steps, journal)
        page.keyboard.press("ArrowLeft")  # the keyboard steps back: one step before the end
        assert page.locator("#rows").get_attribute("data-current-seq") == str(journal[-2]["seq"])
        shoot(page, f"ui-{name}")
        if name == "happy-path":  # the README's picture: the saga charging the card
            page.keyboard.press("Home")
            charge = next(i for i, e in enumerate(journal) if edge_of(e) == "payment-svc->stripe")
            for _ in range(charge + 1):
                page.keyboard.press("ArrowRight")
            assert page.locator("#rows").get_attribute("data-current-seq") == str(
                journal[charge]["seq"]
            )
            shoot(page, "player")

    export = page.locator("#export")  # the finished run, as one file to keep
    assert export.is_visible()
    exported = page.request.get(ui.url + (export.get_attribute("href") or "").lstrip("/"))
    assert exported.ok and 'id="ecom-data"' in exported.text()

    # Clicking an arrow shows its request and response, pretty-printed.
    page.locator(".seq-row.current .hit").click()
    drawer = page.locator("#drawer")
    assert "open" in (drawer.get_attribute("class") or "")
    shown = drawer.inner_text()
    assert "REQUEST" in shown.upper() and "RESPONSE" in shown.upper()
    assert '\n  "' in shown, "bodies are pretty-printed"
    page.keyboard.press("Escape")
    assert "open" not in (drawer.get_attribute("class") or "")


def test_a_broken_component_is_marked_on_its_arrow(broken_ui: UiProcess, watched: Watched) -> None:
    page = watched.page
    page.goto(broken_ui.url)
    page.wait_for_selector("body[data-ready=true]")
    run_id, _ = run_in_page(page, broken_ui, "happy-path")
    assert page.locator("#run-status").inner_text() == "failed"
    run = page.request.get(f"{broken_ui.url}api/runs/{run_id}").json()
    to_stripe = [
        e["seq"] for e in run["entries"] if (e["from"], e["to"]) == ("payment-svc", "stripe")
    ]
    assert to_stripe, "payment-svc called the broken Stripe"
    blamed = [x for x in run["expectations"] if not x["passed"] and set(x["seqs"]) & set(to_stripe)]
    assert blamed, "a failed expectation points at the exchange with Stripe"
    assert any("stripe" in x["detail"] for x in blamed)

    svg = page.locator("#stage svg")
    assert "failed" in (
        svg.locator('[data-edge="payment-svc->stripe"]').get_attribute("class") or ""
    )
    failed_seqs = {s for x in run["expectations"] if not x["passed"] for s in x["seqs"]}
    untouched = {f"{e['from']}->{e['to']}" for e in run["entries"] if e["kind"] == "http"} - {
        f"{e['from']}->{e['to']}" for e in run["entries"] if e["seq"] in failed_seqs
    }
    for edge in untouched:  # only the arrows of failed expectations are marked
        assert "failed" not in (svg.locator(f'[data-edge="{edge}"]').get_attribute("class") or "")

    # The failed expectation in the sidebar jumps to its arrow, marked, with the details.
    page.locator("#expectations li.failed", has_text="no spec violation").first.click()
    current = page.locator("#rows").get_attribute("data-current-seq")
    assert current is not None and int(current) in failed_seqs
    assert "expectation-failed" in (page.locator(".seq-row.current").get_attribute("class") or "")
    drawer = page.locator("#drawer").inner_text()
    assert "FAILED EXPECTATIONS" in drawer.upper() and "SPEC VIOLATIONS" in drawer.upper()
    shoot(page, "ui-broken-stripe")


def test_the_html_report_plays_from_a_file(watched: Watched, tmp_path: Path) -> None:
    html, journal_file = tmp_path / "run.html", tmp_path / "run.jsonl"
    done = subprocess.run(
        [CLI, "run", "happy-path", "--html", str(html), "--journal", str(journal_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    journal = [orjson.loads(line) for line in journal_file.read_bytes().splitlines()]
    page = watched.page
    page.route(
        "**/*",
        lambda route: (
            route.abort() if not route.request.url.startswith("file:") else route.continue_()
        ),
    )  # a request for anything but the file would fail
    page.goto(html.as_uri())
    page.wait_for_selector("#rows")
    assert page.locator("#run-status").inner_text() == "passed"
    steps = play_to_the_end(page, len(journal))
    assert_played_in_order(steps, journal)
    page.keyboard.press("Home")
    for _ in range(len(journal) // 2):
        page.keyboard.press("ArrowRight")
    shoot(page, "report-happy-path")


def test_a_late_entry_is_drawn_apart_and_says_why(watched: Watched, tmp_path: Path) -> None:
    """An entry an earlier scenario set off (``late`` in the saved journal: a real
    service's late event) is drawn apart, and its details say it was not judged."""
    journal_file, html = tmp_path / "run.jsonl", tmp_path / "late.html"

    def cli(*argv: str) -> None:
        done = subprocess.run(
            [CLI, *argv], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr

    cli("run", "cache-hit", "--journal", str(journal_file))
    entries = [orjson.loads(line) for line in journal_file.read_bytes().splitlines()]
    entries[-1]["late"] = True  # as the player marks an earlier scenario's entry
    journal_file.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in entries))
    cli("report", str(journal_file), "--html", str(html))
    page = watched.page
    page.goto(html.as_uri())
    page.wait_for_selector("#rows")
    late = page.locator(f'.seq-row[data-seq="{entries[-1]["seq"]}"]')
    assert "late" in (late.get_attribute("class") or "").split()
    assert page.locator(".seq-row.late").count() == 1  # no other row is
    late.locator(".hit").click()
    shown = page.locator("#drawer").inner_text()
    assert "LATE" in shown.upper() and "earlier scenario" in shown
    page.locator(f'.seq-row[data-seq="{entries[0]["seq"]}"] .hit').click()
    assert "earlier scenario" not in page.locator("#drawer").inner_text()
    shoot(page, "report-late-entry")


def test_a_run_of_thousands_of_interactions_stays_usable(watched: Watched, tmp_path: Path) -> None:
    """4,000 entries: the diagram keeps only the rows in view in the page, and the player
    still jumps, steps and opens details."""
    callers = [
        ("client", "api-gateway"),
        ("api-gateway", "order-svc"),
        ("order-svc", "payment-svc"),
    ]
    with (tmp_path / "big.jsonl").open("wb") as out:
        for seq in range(1, 4001):
            caller, callee = callers[seq % 3]
            entry = Interaction(
                seq,
                1_800_000_000 + seq / 1000,
                caller,
                callee,
                "getOrder",
                "GET",
                f"/orders/ord_{seq}",
                "",
                {},
                None,
                200,
                {},
                {"order_id": f"ord_{seq}"},
                3.2,
            )
            out.write(orjson.dumps(asdict(entry)) + b"\n")
    html = tmp_path / "big.html"
    made = subprocess.run(
        [CLI, "report", str(tmp_path / "big.jsonl"), "--html", str(html)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    page = watched.page
    page.goto(html.as_uri())
    assert page.locator("#position").inner_text() == "0 / 4000"
    page.locator("#rows").focus()
    page.keyboard.press("End")
    assert page.locator("#rows").get_attribute("data-current-seq") == "4000"
    assert page.locator(".seq-row").count() < 80, "only the rows in view are in the page"
    page.keyboard.press("Shift+ArrowLeft")
    assert page.locator("#rows").get_attribute("data-current-seq") == "3990"
    page.locator("#scrubber").evaluate(  # as a drag of the scrubber would
        "el => { el.value = '2000'; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    assert page.locator("#rows").get_attribute("data-current-seq") == "2000"
    page.keyboard.press("Enter")
    assert "/orders/ord_2000" in page.locator("#drawer").inner_text()
    assert page.locator(".seq-row").count() < 80


def test_the_ui_api_replays_a_run_and_refuses_a_second_at_once(ui: UiProcess) -> None:
    """What the page relies on: a run streamed as server-sent events from its start
    (also to a page that connects after it finished), one run at a time, one line for
    an unknown scenario."""
    with httpx.Client(base_url=ui.url, timeout=60) as client:
        assert client.post("api/runs/no-such-scenario").status_code == 404
        first = client.post("api/runs/circuit-breaker")
        assert first.status_code == 201
        busy = client.post("api/runs/cache-hit")
        assert busy.status_code == 409 and "still going" in busy.json()["error"]
        kinds: list[str] = []
        with client.stream("GET", first.json()["events"]) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            kinds = [line[7:] for line in stream.iter_lines() if line.startswith("event: ")]
        assert kinds[0] == "start" and kinds[-1] == "finished"
        run_id = first.json()["id"]
        journal = client.get(f"api/runs/{run_id}/journal").text.splitlines()
        assert kinds.count("entry") >= 1 and kinds.count("expectation") >= 1
        late: list[str] = []  # a page that connects after the end gets it all again
        with client.stream("GET", first.json()["events"]) as stream:
            late = [line[7:] for line in stream.iter_lines() if line.startswith("event: ")]
        assert late == kinds
        finished = client.get(f"api/runs/{run_id}").json()
        assert [e["seq"] for e in finished["entries"]] == [
            orjson.loads(line)["seq"] for line in journal
        ]
        report = client.get(f"api/runs/{run_id}/report.html")
        assert report.status_code == 200 and 'id="ecom-data"' in report.text
