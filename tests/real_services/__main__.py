"""``python -m real_services VARIANT``: serve one variant of the corpus on ``$PORT``,
configured from the environment (``eval "$(ecom-harness env COMPONENT ...)"``)."""

from __future__ import annotations

import os
import sys

from .common import serve
from .variants import VARIANTS


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in VARIANTS:
        print(f"usage: python -m real_services {{{','.join(VARIANTS)}}}", file=sys.stderr)
        return 2
    variant = VARIANTS[argv[0]]
    missing = [name for name in ("PORT",) if name not in os.environ]
    if missing:
        print(
            f"{variant.name}: {', '.join(missing)} not set (see ecom-harness env)", file=sys.stderr
        )
        return 2
    try:
        service = variant.build(os.environ)
    except KeyError as unset:
        print(f"{variant.name}: {unset.args[0]} not set (see ecom-harness env)", file=sys.stderr)
        return 2
    serve(service.app, int(os.environ["PORT"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
