"""The README's commands run as written, and what it says about the code is true.

Every ```sh block of the README is run here, step by step, in this test's environment
(ecom-harness installed in the active venv): the steps that make that environment
(``python3 -m venv``, activating it, ``pip install``) are what this run already is, and
``python -m pytest`` is this run itself, so those are left out; a step that needs
something a test cannot have says so in a ``# needs: ...`` comment on its line (a real
service, ``wrk``) and is left out too. Everything else must exit 0.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Steps that make the environment this test already runs in, or run this very suite.
_ENVIRONMENT = re.compile(
    r"^(python3? -m venv|\. \.venv/bin/activate|pip install|\.ci/install-test-tools"
    r"|python -m pytest)"
)


def runnable_steps(text: str) -> list[str]:
    """Each command of each ```sh block that a test can run, in README order. A
    ``# needs: ...`` comment, on the command's line or a line of its own just before
    it, leaves the command out; ``\\`` continues a command on the next line."""
    steps = []
    for block in BLOCK.findall(text):
        needs = False
        for line in block.replace("\\\n", " ").splitlines():
            command, _, comment = line.partition("#")
            if not command.strip():
                needs = needs or "needs:" in comment
                continue
            if needs or "needs:" in comment:
                needs = False
                continue
            for part in command.split("&&"):
                step = part.strip()
                if step and not _ENVIRONMENT.match(step):
                    steps.append(step)
    return steps


def test_the_readme_has_runnable_blocks() -> None:
    steps = runnable_steps(README.read_text(encoding="utf-8"))
    assert "ecom-harness run all" in steps  # the main job, the first command
    assert len(steps) >= 5, steps


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for all the steps, in README order, as a reader's shell would be:
    a step may read what an earlier one wrote (a saved journal)."""
    return tmp_path_factory.mktemp("readme")


@pytest.mark.parametrize("step", runnable_steps(README.read_text(encoding="utf-8")))
def test_a_readme_step_runs_as_written(step: str, workdir: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(
        [bash, "-c", step],
        cwd=workdir,  # what a step writes (reports, an env file) stays out of the repo
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{step!r} exited {done.returncode}:\n{done.stderr[-2000:]}"


def test_the_readme_stands_alone_inside_the_repo() -> None:
    """A user's clone has no ../shared/: every relative link leads to a file of the repo."""
    text = README.read_text(encoding="utf-8")
    assert "../shared" not in text
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README links to missing {target}"


def _options_of(command: object) -> set[str]:
    import click

    assert isinstance(command, click.Command)
    return {
        name
        for param in command.params
        if isinstance(param, click.Option)
        for name in param.opts
        if name.startswith("--") and name != "--help"
    }


@pytest.mark.parametrize(
    ("words", "path"),
    [
        ("ecom-harness specs lint", ("specs", "lint")),
        ("ecom-harness topology", ("topology",)),
        ("ecom-harness up", ("up",)),
        ("ecom-harness env", ("env",)),
        ("ecom-harness stubs serve", ("stubs", "serve")),
    ],
)
def test_the_commands_table_names_every_option(words: str, path: tuple[str, ...]) -> None:
    """The README's row for a command lists each of its options (``up --host`` was missing)."""
    import click

    from ecom_harness.cli.main import cli

    command: object = cli
    ctx = click.Context(cli)
    for name in path:
        assert isinstance(command, click.Group)
        command = command.get_command(ctx, name)
    row = next(
        line
        for line in README.read_text(encoding="utf-8").splitlines()
        if line.startswith(f"| `{words}")
    )
    missing = sorted(option for option in _options_of(command) if option not in row)
    assert not missing, f"README's row for {words} lacks {missing}"
