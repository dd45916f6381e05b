"""The pricing rule is one rule: its SQL form (`catalog.queries.unit_price`, which the compiled read path uses for
`Variant.unitPrice`) and its Python form (`rules.unit_price`, which the resolvers and carts use) agree on random
list prices, tier sets (percentages with two places, fixed amounts, reached or not, at the boundary) and
quantities — all the examples in one statement on Postgres."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Integer, Numeric, column, select, values
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.domain.catalog import queries as catalog
from cityos.domain.catalog import rules

EXAMPLES = 400

percents = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100), places=2)
tiers = st.builds(
    lambda minimum, percent, amount, fixed: rules.Tier(minimum, unit_amount=amount) if fixed
    else rules.Tier(minimum, percent_off=percent),
    st.integers(1, 60), percents, st.integers(0, 2_000_000), st.booleans())
examples = st.tuples(st.integers(0, 2_000_000), st.integers(1, rules.MAX_LINE_QUANTITY) | st.integers(1, 60),
                     st.lists(tiers, max_size=5))


async def test_the_sql_unit_price_is_the_python_rule(owner_engine: AsyncEngine) -> None:
    drawn: list[tuple[int, int, list[rules.Tier]]] = []

    @hypothesis_settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
    @given(examples)
    def generate(example: tuple[int, int, list[rules.Tier]]) -> None:
        drawn.append(example)

    generate()
    # boundaries: a quantity exactly at a tier's minimum, half-cent rounding, 100 % off, a fixed price above list
    drawn += [(8900, 5, [rules.Tier(5, percent_off=Decimal("12.5"))]),
              (1, 1, [rules.Tier(1, percent_off=Decimal("50"))]), (3, 1, [rules.Tier(1, percent_off=Decimal("50"))]),
              (999, 2, [rules.Tier(2, percent_off=Decimal(100))]), (100, 3, [rules.Tier(1, unit_amount=150)]),
              (0, 1, [rules.Tier(1, unit_amount=5)]), (100, 4, [rules.Tier(5, unit_amount=1)])]
    example_rows = [(index, amount, quantity) for index, (amount, quantity, _) in enumerate(drawn)]
    tier_rows: list[tuple[int, int, Decimal | None, int | None]] = [(-1, 1, None, 0)]  # VALUES needs a row
    for index, (_, _, example_tiers) in enumerate(drawn):
        tier_rows += [(index, tier.min_quantity, tier.percent_off, tier.unit_amount) for tier in example_tiers]
    given_examples = values(column("n", Integer), column("list_amount", Integer), column("quantity", Integer),
                            name="e").data(example_rows)
    given_tiers = values(column("n", Integer), column("min_quantity", Integer), column("percent_off", Numeric(5, 2)),
                         column("unit_amount", Integer), name="t").data(tier_rows)
    price = catalog.unit_price(given_examples.c.list_amount, given_examples.c.quantity, given_tiers,
                               given_tiers.c.n == given_examples.c.n)
    async with owner_engine.connect() as connection:
        rows = (await connection.execute(select(given_examples.c.n, price).order_by(given_examples.c.n))).all()
    in_sql: dict[int, Any] = {row[0]: row[1] for row in rows}
    expected = {index: rules.unit_price(amount, quantity, example_tiers)
                for index, (amount, quantity, example_tiers) in enumerate(drawn)}
    assert len(drawn) >= EXAMPLES and in_sql == expected, [
        (drawn[index], in_sql[index], expected[index]) for index in expected if in_sql[index] != expected[index]]
