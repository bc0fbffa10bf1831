"""``ecom-harness report``: a saved journal as one self-contained HTML player."""

from __future__ import annotations

from pathlib import Path

import click

from ._failures import fail

__all__ = ["report"]


@click.command(short_help="Turn a saved journal into a self-contained HTML player.")
@click.argument("journal", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--html",
    "html_path",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the player here: one HTML file, no network needed to open it.",
)
@click.option("--title", help="The report's title (default: the journal's file name).")
@click.option(
    "--topology",
    "topology_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A topology file (default: the one shipped with ecom-harness).",
)
def report(journal: Path, html_path: Path, title: str | None, topology_path: Path | None) -> None:
    """Turn JOURNAL (JSON Lines, from `up --journal` or `run --journal`) into an HTML
    player: the topology, a sequence diagram, every request and response (secrets
    redacted) and every spec violation, playable step by step. A `run` journal gives one
    run per scenario."""
    from ecom_harness.harness.viewer import (
        JournalFileError,
        journal_records,
        read_journal,
        write_report,
    )
    from ecom_harness.specs import TopologyError, load_topology

    try:
        entries = read_journal(journal)
        model = load_topology(topology_path)
    except JournalFileError as exc:
        fail(str(exc))
    except TopologyError as exc:
        fail(str(exc.diagnostics[0]))
    runs = journal_records(entries, journal.name)
    try:
        size = write_report(html_path, title or f"Journal {journal.name}", model, runs)
    except OSError as exc:
        fail(f"{html_path}: cannot write: {exc.strerror or exc}")
    click.echo(
        f"report written to {html_path}: {len(runs)} run(s), {len(entries)} entries, "
        f"{size / 1024:.0f} KiB"
    )
