"""``ecom-harness contracts ...``: Pact contracts generated from the scenarios, verified,
checked against the specs; spec versions compared; providers fuzzed. Thin: the work is in
``ecom_harness.harness.contracts``, imported inside each command (``--help`` stays light).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from ecom_harness.harness.contracts import SpecIndex, Summary

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

PACTS_OPTION = click.option(
    "--pacts",
    "pact_folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of pact files (default: the committed contracts/).",
)
SPECS_OPTION = click.option(
    "--specs",
    "spec_folder",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Specs folder (default: the shipped specs/).",
)


def usage_error(message: str) -> NoReturn:
    click.echo(f"ecom-harness: {message}", err=True)
    sys.exit(EXIT_USAGE)


def report(command: str, summary: Summary, json_file: Path | None, junit_file: Path | None) -> None:
    """The console table, the optional files, and the exit code: the reporters of ``run``."""
    from rich.console import Console
    from rich.table import Table

    from ecom_harness.harness.contracts import write_json, write_junit

    table = Table(title=f"contracts {command}", show_lines=False)
    table.add_column("group")
    table.add_column("case")
    table.add_column("result")
    table.add_column("why", overflow="fold")
    for result in summary.results:
        verdict = "[green]pass[/]" if result.passed else "[red]FAIL[/]"
        table.add_row(result.group, result.name, verdict, result.message)
    console = Console(soft_wrap=False)
    console.print(table)
    for result in summary.failed:
        for line in result.details:
            click.echo(f"  {result.group} :: {result.name}: {line}")
    if json_file is not None:
        write_json(json_file, command, summary.results)
    if junit_file is not None:
        write_junit(junit_file, command, summary.results)
    click.echo(summary.line(), err=True)
    sys.exit(EXIT_OK if summary.ok else EXIT_PROBLEMS)


JSON_OPTION = click.option(
    "--json",
    "json_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write results as JSON.",
)
JUNIT_OPTION = click.option(
    "--junit",
    "junit_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write results as JUnit XML (one test case per result).",
)


@click.group(short_help="Generate, verify, check, diff and fuzz the Pact contracts.")
def contracts() -> None:
    """Consumer-driven contracts (Pact V4) between the platform's components."""


def _index(spec_folder: Path | None) -> SpecIndex:
    from ecom_harness.harness.contracts import SpecIndex, SpecIndexError
    from ecom_harness.specs import spec_root

    try:
        return SpecIndex(spec_folder or spec_root())
    except SpecIndexError as exc:
        usage_error(str(exc))


@contracts.command("check")
@PACTS_OPTION
@SPECS_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One line per finding, or a JSON array.",
)
def check(pact_folder: Path | None, spec_folder: Path | None, fmt: str) -> None:
    """Check every interaction of every pact against its provider's OpenAPI or AsyncAPI.

    One line per finding: PACT#POINTER [INTERACTION] -> SPEC#POINTER: MESSAGE [RULE].
    Exits 0 when every pact fits the specs, 1 on findings, 2 on unreadable input.
    """
    import orjson

    from ecom_harness.harness.contracts import PactError, check_pacts, default_pact_dir, load_pacts

    try:
        pacts = load_pacts(pact_folder or default_pact_dir())
    except PactError as exc:
        usage_error(str(exc))
    findings = check_pacts(pacts, _index(spec_folder))
    if fmt == "json":
        click.echo(
            orjson.dumps([f.as_dict() for f in findings], option=orjson.OPT_INDENT_2).decode()
        )
    else:
        for finding in findings:
            click.echo(str(finding))
    count = sum(len(p.interactions) for p in pacts)
    click.echo(
        f"{len(pacts)} pacts, {count} interactions checked, {len(findings)} "
        f"finding{'s' * (len(findings) != 1)}",
        err=True,
    )
    sys.exit(EXIT_PROBLEMS if findings else EXIT_OK)


@contracts.command("diff")
@click.argument("old")
@click.argument("new")
@PACTS_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One line per change, or JSON.",
)
def diff(old: str, new: str, pact_folder: Path | None, fmt: str) -> None:
    """Breaking and non-breaking changes from OLD to NEW specs, and the consumers they break.

    OLD and NEW are each a spec file, a specs folder or a git revision (its specs/), as in
    `contracts diff main specs/` or `contracts diff HEAD~1 HEAD`. Exits 1 when a change is
    breaking, 0 when none is, 2 on unusable arguments.
    """
    import orjson

    from ecom_harness.harness.contracts import (
        PactError,
        RevisionError,
        broken_pacts,
        default_pact_dir,
        diff_specs,
        load_pacts,
        spec_side,
    )

    try:
        pacts = load_pacts(pact_folder or default_pact_dir())
        old_file = Path(old) if Path(old).is_file() else None
        new_file = Path(new) if Path(new).is_file() else None
        with (
            spec_side(old, other_file=new_file) as old_root,
            spec_side(new, other_file=old_file) as new_root,
        ):
            before, after = _index(old_root), _index(new_root)
            changes = diff_specs(before, after, pacts)
            broken = broken_pacts(before, after, pacts)
    except (PactError, RevisionError) as exc:
        usage_error(str(exc))
    if fmt == "json":
        payload = {
            "changes": [c.as_dict() for c in changes],
            "broken_pacts": [f.as_dict() for f in broken],
        }
        click.echo(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
    else:
        for change in changes:
            click.echo(str(change))
        for finding in broken:
            click.echo(f"breaks {finding}")
    breaking = sum(c.breaking for c in changes)
    click.echo(
        f"{len(changes)} changes, {breaking} breaking; {len(broken)} pact interaction(s) broken",
        err=True,
    )
    sys.exit(EXIT_PROBLEMS if breaking or broken else EXIT_OK)


def _parse_headers(values: tuple[str, ...]) -> dict[str, str]:
    headers = {}
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            usage_error(f"--header '{value}': expected NAME: VALUE")
        headers[name.strip()] = content.strip()
    return headers


@contracts.command("fuzz")
@click.argument("providers", nargs=-1)
@click.option(
    "--provider-url",
    help="The provider's base URL (a real service); without it the providers' stubs are served.",
)
@click.option(
    "--header",
    "header_values",
    multiple=True,
    help="'NAME: VALUE' sent with every request (credentials). Repeatable.",
)
@click.option("--max-examples", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option("--stateful-steps", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Generation seed.")
@SPECS_OPTION
@JSON_OPTION
@JUNIT_OPTION
def fuzz(
    *,
    providers: tuple[str, ...],
    provider_url: str | None,
    header_values: tuple[str, ...],
    max_examples: int,
    stateful_steps: int,
    seed: int,
    spec_folder: Path | None,
    json_file: Path | None,
    junit_file: Path | None,
) -> None:
    """Test PROVIDER's service against its own OpenAPI with schemathesis.

    Generated valid requests for every operation, stateful sequences along the spec's
    links, and checks for server errors, undocumented statuses, media types and headers,
    and answers that break the schema. With --provider-url, one PROVIDER's real service;
    without, the stubs of every PROVIDER (default: all). Exits 0 when all pass, 1 on a
    failure, 2 on a usage or set-up error.
    """
    from ecom_harness.harness.contracts import (
        FuzzError,
        FuzzOptions,
        Summary,
        credentials_for,
        fuzz_provider,
        served_stubs,
    )

    index = _index(spec_folder)
    names = providers or tuple(sorted(n for n in index.apis if n != "mesh-admin"))
    for name in names:
        if index.api(name) is None:
            usage_error(f"unknown provider '{name}' (known: {', '.join(sorted(index.apis))})")
    if provider_url is not None and len(names) != 1:
        usage_error("--provider-url takes exactly one PROVIDER")
    headers = _parse_headers(header_values)
    summary = Summary()

    def run(urls: dict[str, str]) -> None:
        for name in names:
            api = index.api(name)
            assert api is not None
            sent = headers if provider_url else credentials_for(api, urls[name]) | headers
            options = FuzzOptions(
                provider=name,
                url=urls[name],
                spec=api.document.path,
                headers=sent,
                max_examples=max_examples,
                stateful_steps=stateful_steps,
                seed=seed,
            )
            summary.results.extend(fuzz_provider(options))

    try:
        if provider_url is not None:
            run({names[0]: provider_url})
        else:
            with served_stubs() as urls:
                run(urls)
    except FuzzError as exc:
        usage_error(str(exc))
    report("fuzz", summary, json_file, junit_file)


@contracts.command("generate")
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Fail (exit 1) when the committed pacts are out of date; write nothing.",
)
@PACTS_OPTION
@click.option(
    "--no-consumer-run",
    is_flag=True,
    help="Skip running the consumers against pact-python's mock servers (faster; less checked).",
)
def generate(check_only: bool, pact_folder: Path | None, no_consumer_run: bool) -> None:
    """Generate the Pact V4 files of every edge the scenarios exercise.

    Runs the scenarios, makes one interaction per edge, operation and status (or topic
    and message type), runs each consumer's simulator against pact-python's mock server
    in its provider's place, and writes contracts/CONSUMER-PROVIDER.json. Exits 0 when
    written (or, with --check, up to date), 1 when stale or a consumer broke its pact.
    """
    import asyncio

    from ecom_harness.harness.contracts import (
        GenerateError,
        default_pact_dir,
        generate_pacts,
        stale_pacts,
    )
    from ecom_harness.harness.scenario_files import ScenarioError, load_scenarios

    folder = pact_folder or default_pact_dir()
    try:
        scenarios = load_scenarios()
        generated = asyncio.run(
            generate_pacts(scenarios, _index(None), exercise=not no_consumer_run)
        )
    except (GenerateError, ScenarioError) as exc:
        click.echo(f"ecom-harness: {exc}", err=True)
        sys.exit(EXIT_PROBLEMS)
    for problem in generated.consumer_problems:
        click.echo(f"consumer: {problem}")
    if generated.consumer_problems:
        click.echo(
            f"{len(generated.consumer_problems)} consumer problem(s): pacts not written", err=True
        )
        sys.exit(EXIT_PROBLEMS)
    if check_only:
        stale = stale_pacts(folder, generated.files)
        for line in stale:
            click.echo(line)
        click.echo(
            f"{len(generated.files)} pacts: "
            + (
                "up to date"
                if not stale
                else f"{len(stale)} stale (run `ecom-harness contracts generate`)"
            ),
            err=True,
        )
        sys.exit(EXIT_PROBLEMS if stale else EXIT_OK)
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in generated.files.items():
        (folder / name).write_bytes(content)
    for old in sorted(folder.glob("*.json")):
        if old.name not in generated.files:
            old.unlink()
    click.echo(f"{len(generated.files)} pacts written to {folder}", err=True)
    sys.exit(EXIT_OK)


@contracts.command("verify")
@click.argument("providers", nargs=-1)
@click.option("--provider-url", help="Verify the real provider at this URL (one PROVIDER).")
@click.option(
    "--state-url",
    help="Your provider-state endpoint (default: the mesh's POST /admin/provider-states).",
)
@click.option("--kafka", help="A real broker for the mesh: 'local' (Tansu) or HOST:PORT.")
@PACTS_OPTION
@JSON_OPTION
@JUNIT_OPTION
def verify(
    *,
    providers: tuple[str, ...],
    provider_url: str | None,
    state_url: str | None,
    kafka: str | None,
    pact_folder: Path | None,
    json_file: Path | None,
    junit_file: Path | None,
) -> None:
    """Verify providers against every pact that names them (default: every provider).

    Each provider runs inside the mesh (its stub, or the real service at --provider-url,
    whose calls reach the mesh's stubs); states are set through the mesh's admin API;
    message pacts are verified by having the provider publish the message. One result per
    interaction; exits 0 when all pass, 1 on a failure, 2 on a usage or set-up error.
    """
    from ecom_harness.harness.contracts import (
        PactError,
        Summary,
        VerifyOptions,
        default_pact_dir,
        load_pacts,
        verify_providers,
    )
    from ecom_harness.harness.mesh import MeshConfigError, MeshOptions

    try:
        pacts = load_pacts(pact_folder or default_pact_dir())
    except PactError as exc:
        usage_error(str(exc))
    known = sorted({p.provider for p in pacts})
    for name in providers:
        if name not in known:
            usage_error(f"no pact names provider '{name}' (providers: {', '.join(known)})")
    if provider_url is not None and len(providers) != 1:
        usage_error("--provider-url takes exactly one PROVIDER")
    options = VerifyOptions(
        providers=providers,
        provider_url=provider_url,
        state_url=state_url,
        mesh=MeshOptions(kafka=kafka),
    )
    summary = Summary()
    try:
        summary.results.extend(verify_providers(pacts, options))
    except (MeshConfigError, OSError) as exc:
        usage_error(str(exc))
    report("verify", summary, json_file, junit_file)
