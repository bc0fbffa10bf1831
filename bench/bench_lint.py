"""How long loading and linting every shipped spec takes, against baselines measured in
the same run: parsing the YAML alone (the floor) and openapi-spec-validator alone.

Run: python bench/bench_lint.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _user_env import user_env
from openapi_spec_validator import OpenAPIV31SpecValidator

from ecom_harness.specs import collect_files, lint_specs, read_document, spec_root


def _median_ms(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    repeat = parser.parse_args().repeat
    files = list(collect_files([spec_root()]))

    def parse_only() -> None:
        for path in files:
            read_document(path)

    def spec_validator_only() -> None:
        for path in files:
            doc = read_document(path)
            if not isinstance(doc, Exception) and "openapi" in getattr(doc, "data", {}):
                list(OpenAPIV31SpecValidator(doc.data).iter_errors())

    start = time.perf_counter()
    report = lint_specs()
    first_ms = (time.perf_counter() - start) * 1000
    assert report.ok, report.diagnostics
    lint_ms = _median_ms(lint_specs, repeat)
    parse_ms = _median_ms(parse_only, repeat)
    osv_ms = _median_ms(spec_validator_only, repeat)

    def cli() -> None:
        subprocess.run(
            [Path(sys.executable).parent / "ecom-harness", "specs", "lint"],
            check=True,
            capture_output=True,
            env=user_env(),
        )

    cli()  # unmeasured: writes the bytecode caches
    cli_ms = _median_ms(cli, 3)

    print(f"specs: {len(files)} files, {sum(len(p.read_text().splitlines()) for p in files)} lines")
    print(f"{'measure':<44}{'ms':>9}{'x parse':>10}")
    for label, value in (
        ("parse YAML only (baseline)", parse_ms),
        ("openapi-spec-validator only", osv_ms),
        ("full lint, first call in process", first_ms),
        (f"full lint, median of {repeat}", lint_ms),
        ("`ecom-harness specs lint` process, median of 3", cli_ms),
    ):
        print(f"{label:<44}{value:>9.1f}{value / parse_ms:>10.1f}")


if __name__ == "__main__":
    main()
