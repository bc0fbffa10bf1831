"""catalog-svc: product detail and availability, kept current from inventory events.

The catalog is seeded at start with the products of the platform's seed data
(``specs/seed.toml``, shared with inventory-svc and every spec example), then
``settings["products"]``; the harness adds more with :meth:`CatalogSimulator.seed`.
``reset()`` returns to that seed.

Availability. Inventory events carry the lines reserved or released, not the stock left,
so the catalog keeps its own per-sku ``available`` count and derives ``availability``
from it: ``<= 0`` OUT_OF_STOCK, ``<= low_stock_threshold`` LOW_STOCK, else IN_STOCK.
``inventory.reserved`` subtracts the quantities, ``inventory.released`` adds them back;
events are applied once each, by envelope id (delivery is at least once). The count of a
seeded sku is ``settings["stock"][sku]`` when given, else the seed's stock of it, else one
that reproduces the seeded availability: ``default_stock`` (IN_STOCK),
``low_stock_threshold`` (LOW_STOCK), 0 (OUT_OF_STOCK). ``updated_at`` moves (to
ctx.clock) when availability changes.

Settings (``settings["catalog-svc"]``): ``products`` (list of Product objects, none),
``stock`` (sku -> count, ``{}``), ``default_stock`` (100), ``low_stock_threshold`` (10).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    RowMapping,
    String,
    Table,
    Update,
    bindparam,
    case,
    exists,
    select,
)

from ecom_harness.specs import load_seed
from ecom_harness.stubs.engine import Behaviour, StubResponse, ValidRequest
from ecom_harness.stubs.events import Record
from ecom_harness.stubs.state import Connection, insert_if_new, modifies_in_with

from ._paging import invalid_cursor, keyset_page, page_of
from ._simulator import (
    SeedError,
    Simulator,
    health_behaviour,
    json_response,
    not_found,
    rfc3339,
)

__all__ = ["CatalogSimulator"]

PRODUCT_SCHEMA = "/components/schemas/Product"
DEFAULT_STOCK = 100
DEFAULT_LOW_STOCK = 10
INVENTORY_TOPIC = "inventory"
# How each inventory event moves the count of the skus it lists.
STOCK_EFFECT = {"inventory.reserved": -1, "inventory.released": +1}


class CatalogSimulator(Simulator):
    """Products in catalog-svc's own database; availability from the inventory topic."""

    component = "catalog-svc"
    metadata = MetaData()
    products = Table(
        "products",
        metadata,
        Column("sku", String(16), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("description", String(5000), nullable=False),
        Column("amount", Integer, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("category", String(64), nullable=False, index=True),
        Column("images", JSON, nullable=False),
        Column("available", Integer, nullable=False),
        Column("updated_at", String(40), nullable=False),
    )
    applied_events = Table(
        "applied_events", metadata, Column("event_id", String(40), primary_key=True)
    )
    # Built once (see inventory-svc): the statements of every inventory event.
    _MOVE_COUNT = (
        products.update()
        .where(products.c.sku == bindparam("w_sku"))
        .values(available=products.c.available + bindparam("w_delta"))
        .returning(products.c.available)
    )
    _TOUCH = products.update().where(products.c.sku == bindparam("w_sku"))

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        seed = load_seed()
        self._seed_products = list(seed.products)
        settings = self.ctx.settings
        self.stock: Mapping[str, int] = {**seed.stock, **settings.get("stock", {})}
        self.default_stock = int(settings.get("default_stock", DEFAULT_STOCK))
        self.low_stock = int(settings.get("low_stock_threshold", DEFAULT_LOW_STOCK))
        self._apply = insert_if_new(self.ctx.db, self.applied_events)
        self._apply_line = self._apply_in_one() if modifies_in_with(self.ctx.db) else None

    def behaviours(self) -> dict[str, Behaviour]:
        return {
            "listProducts": self.list_products,
            "getProduct": self.get_product,
            "getHealth": health_behaviour(self.component),
        }

    async def start(self) -> None:
        await super().start()
        await self._seed_baseline()
        if self.ctx.bus is not None:
            await self.ctx.bus.subscribe(INVENTORY_TOPIC, self.component, self.on_inventory)

    async def reset(self) -> None:
        await super().reset()
        await self._seed_baseline()

    async def _seed_baseline(self) -> None:
        await self.seed(self._seed_products)
        await self.seed(self.ctx.settings.get("products", []))

    # --- seeding ---

    async def seed(self, products: Iterable[Mapping[str, Any]]) -> None:
        """Add or replace products (spec-valid ``Product`` objects; ValueError naming
        each violation otherwise). Their stock follows the rules in the module doc."""
        if not isinstance(products, list | tuple):
            raise SeedError(
                "", "catalog-svc's seed is a list of Product objects, not a single value"
            )
        for index, product in enumerate(products):
            if not isinstance(product, Mapping):
                raise SeedError(f"/{index}", f"product {index} is not a Product object")
        rows = [self._row(product, index) for index, product in enumerate(products)]
        async with self.ctx.db.begin() as conn:
            for row in rows:
                await conn.execute(self.products.delete().where(self.products.c.sku == row["sku"]))
                await conn.execute(self.products.insert().values(**row))

    def _row(self, product: Mapping[str, Any], index: int = 0) -> dict[str, Any]:
        violations = self.ctx.api.schemas.violations(PRODUCT_SCHEMA, dict(product))
        if violations:
            listed = "; ".join(f"{v.pointer or '/'}: {v.message}" for v in violations)
            where = f"/{index}{violations[0].pointer}"
            raise SeedError(where, f"product {index} is not a catalog-svc Product: {listed}")
        sku = product["sku"]
        return {
            "sku": sku,
            "name": product["name"],
            "description": product["description"],
            "amount": product["price"]["amount"],
            "currency": product["price"]["currency"],
            "category": product["category"],
            "images": list(product["images"]),
            "available": self.stock.get(sku, self._stock_for(product["availability"])),
            "updated_at": product["updated_at"],
        }

    def _stock_for(self, availability: str) -> int:
        """A count whose availability is the seeded one."""
        return {"IN_STOCK": self.default_stock, "LOW_STOCK": self.low_stock}.get(availability, 0)

    def availability(self, available: int) -> str:
        if available <= 0:
            return "OUT_OF_STOCK"
        return "LOW_STOCK" if available <= self.low_stock else "IN_STOCK"

    def _product(self, row: RowMapping) -> dict[str, Any]:
        return {
            "sku": row["sku"],
            "name": row["name"],
            "description": row["description"],
            "price": {"amount": row["amount"], "currency": row["currency"]},
            "category": row["category"],
            "images": row["images"],
            "availability": self.availability(row["available"]),
            "updated_at": row["updated_at"],
        }

    # --- operations ---

    async def list_products(self, req: ValidRequest) -> StubResponse:
        """Ordered by sku; the cursor is the last sku of the previous page."""
        query = req.params["query"]
        statement = select(self.products)
        if "category" in query:
            statement = statement.where(self.products.c.category == query["category"])
        page = keyset_page(req, statement, self.products.c.sku, str, newest_first=False)
        if page is None:
            return invalid_cursor(req)
        statement, limit = page
        async with self.ctx.db.connect() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        items, next_cursor = page_of(rows, limit, lambda row: {"sku": row["sku"]})
        body = {"items": [self._product(row) for row in items], "next_cursor": next_cursor}
        return json_response(200, body)

    async def get_product(self, req: ValidRequest) -> StubResponse:
        sku = req.params["path"]["sku"]
        async with self.ctx.db.connect() as conn:
            statement = select(self.products).where(self.products.c.sku == sku)
            row = (await conn.execute(statement)).mappings().first()
        if row is None:
            return not_found(req, f"Product {sku}")
        return json_response(200, self._product(row))

    # --- inventory events ---

    def _apply_in_one(self) -> Update:
        """An event of one line applied in one statement, for a database that runs
        data-modifying ``WITH`` queries: the count moves only if the event's id was new
        (its insert returned it), and ``updated_at`` only if the availability changes
        with it. One round trip where ``BEGIN``, the id's insert, the update and
        ``COMMIT`` were four (issue 15)."""
        applied = (
            self._apply.values(event_id=bindparam("event_id"))
            .returning(self.applied_events.c.event_id)
            .cte("applied")
        )
        before = self.products.c.available
        after = before + bindparam("w_delta")

        def level(count: Any) -> Any:  # availability(), in SQL
            return case((count <= 0, 0), (count <= self.low_stock, 1), else_=2)

        now = bindparam("w_now", type_=self.products.c.updated_at.type)
        touched = case((level(after) != level(before), now), else_=self.products.c.updated_at)
        return (
            self.products.update()
            .where(self.products.c.sku == bindparam("w_sku"), exists(select(applied.c.event_id)))
            .values(available=after, updated_at=touched)
        )

    async def on_inventory(self, record: Record) -> None:
        """Apply a reservation or release to the counts, once per event id."""
        sign = STOCK_EFFECT.get(record.message_type)
        if sign is None:
            return
        event = record.value
        lines = event["data"]["items"]
        if self._apply_line is not None and len(lines) == 1:
            line = {
                "event_id": event["id"],
                "w_sku": lines[0]["sku"],
                "w_delta": sign * int(lines[0]["quantity"]),
                "w_now": rfc3339(self.ctx.clock()),
            }
            await self.ctx.db.execute(self._apply_line, line)
            return
        async with self.ctx.db.begin() as conn:
            if (await conn.execute(self._apply, {"event_id": event["id"]})).rowcount == 0:
                return  # applied already: a redelivery
            for line in event["data"]["items"]:
                await self._adjust(conn, line["sku"], sign * int(line["quantity"]))

    async def _adjust(self, conn: Connection, sku: str, delta: int) -> None:
        """Move one sku's count in one atomic UPDATE (partitions are handled
        concurrently); a sku the catalog does not list is ignored."""
        moved = await conn.execute(self._MOVE_COUNT, {"w_sku": sku, "w_delta": delta})
        now = moved.scalar_one_or_none()
        if now is None or self.availability(now) == self.availability(now - delta):
            return
        await conn.execute(self._TOUCH, {"w_sku": sku, "updated_at": rfc3339(self.ctx.clock())})
