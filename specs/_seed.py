"""The platform's one seed data set (``specs/seed.toml``): users, products, stock and
test cards that every simulator starts from and every spec example uses.

Why one file: when each simulator seeded itself from its own spec's examples, the
documents drifted apart -- the gateway's example SKU did not exist in the catalog, and the
catalog called a product LOW_STOCK that inventory did not stock. Now catalog-svc,
inventory-svc and user-svc read the same rows, and the examples are checked against them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ._locate import spec_root

__all__ = ["LOW_STOCK_THRESHOLD", "Seed", "availability", "load_seed"]

LOW_STOCK_THRESHOLD = 10  # catalog-svc: up to this many units is LOW_STOCK


def availability(units: int, low_stock: int = LOW_STOCK_THRESHOLD) -> str:
    """The catalog's word for a stock count."""
    if units <= 0:
        return "OUT_OF_STOCK"
    return "LOW_STOCK" if units <= low_stock else "IN_STOCK"


@dataclass(frozen=True, slots=True)
class Seed:
    """The seed rows; ``products`` as catalog-svc's ``Product`` (availability from stock)."""

    users: tuple[dict[str, Any], ...]
    products: tuple[dict[str, Any], ...]
    stock: dict[str, int] = field(default_factory=dict)
    test_cards: tuple[dict[str, str], ...] = ()
    # Confirmed orders with everything each service holds of them (see seed.toml).
    orders: tuple[dict[str, Any], ...] = ()

    def user(self, email: str) -> dict[str, Any] | None:
        return next((u for u in self.users if u["email"] == email), None)


@cache
def load_seed(path: Path | None = None) -> Seed:
    """Read the seed (default: the one shipped with the specs), once per path."""
    data = tomllib.loads((path or spec_root() / "seed.toml").read_text(encoding="utf-8"))
    stock = {str(sku): int(units) for sku, units in data.get("stock", {}).items()}
    users = tuple({"phone": None, **user} for user in data.get("users", []))
    products = tuple(
        {**product, "availability": availability(stock.get(product["sku"], 0))}
        for product in data.get("products", [])
    )
    orders = tuple(
        {**order, "total_amount": sum(i["quantity"] * i["unit_amount"] for i in order["items"])}
        for order in data.get("orders", [])
    )
    return Seed(users, products, stock, tuple(data.get("test_cards", [])), orders)
