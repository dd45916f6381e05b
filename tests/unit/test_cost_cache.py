"""The operation cost is measured once per (document, operation, values of the page variables) and remembered:
other variables (ids, filters) share the measure; another page size is measured again; large documents are not
kept."""

from __future__ import annotations

from typing import Any

from cityos.graphql.core.limits import DEFAULT_PAGE_SIZE, CostCache, _fragments_of, _measured, _selected_operation
from cityos.graphql.schema import schema
from graphql import parse

DOCUMENT = """query Listing($n: Int, $search: String, $m: Int) {
  products(first: $n, filter: {search: $search}) { nodes { id ...Variants } }
}
fragment Variants on Product { variants { sku } }"""


class Counting:
    def __init__(self, document: str) -> None:
        self.document = parse(document)
        self.calls = 0

    def __call__(self, variables: dict[str, Any]) -> Any:
        def measure() -> Any:
            self.calls += 1
            operation = _selected_operation(self.document, None)
            assert operation is not None
            return _measured(schema._schema, operation, _fragments_of(self.document.definitions), variables)
        return measure


def test_measured_once_per_page_size_whatever_the_other_variables() -> None:
    cache, measure = CostCache(), Counting(DOCUMENT)

    def cost(**variables: Any) -> int:
        return cache.cost(DOCUMENT, None, variables, measure(variables))

    assert cost(n=10, search="candle") == 1 + 10 * (1 + 1)
    assert cost(n=10, search="honey", m=3) == 1 + 10 * (1 + 1)  # $m is not a page argument here
    assert measure.calls == 1
    assert cost(n=50) == 1 + 50 * 2 and measure.calls == 2
    assert cost(n="ten") == cost() == 1 + DEFAULT_PAGE_SIZE * 2 and measure.calls == 3  # not an int: the default
    assert cost(n=True) == 1 + DEFAULT_PAGE_SIZE * 2 and measure.calls == 3  # a boolean is not a page size
    assert cost(n=10) == 21 and measure.calls == 3


def test_bounded() -> None:
    cache = CostCache(max_documents=2, max_length=len(DOCUMENT), per_document=2)
    measure = Counting(DOCUMENT)
    for n in (1, 2, 3, 3):
        cache.cost(DOCUMENT, None, {"n": n}, measure({"n": n}))
    assert measure.calls == 4  # the third page size was not kept: measured again
    longer = DOCUMENT + " "
    measured_longer = Counting(longer)
    for _ in range(2):
        cache.cost(longer, None, {"n": 1}, measured_longer({"n": 1}))
    assert measured_longer.calls == 2  # longer than max_length: measured each time
    for name in ("A", "B", "C"):
        cache.cost(DOCUMENT, name, {}, measure({}))
    assert len(cache._documents) == 2
