from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.errors import BadUserInput
from cityos.graphql.core.relay import PageRequest, from_global_id, page_loaded_rows, to_global_id


@dataclass
class FakeRow:
    id: uuid.UUID
    created_at: datetime


ROWS = [FakeRow(uuid.UUID(int=i), datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i)) for i in range(10)]


def ids(connection: object) -> list[int]:
    return [edge.node.id.int for edge in connection.edges]  # type: ignore[attr-defined]


@given(st.uuids(), st.sampled_from(["Store", "Tenant", "StoreDomain"]))
def test_global_ids_round_trip(local_id: uuid.UUID, type_name: str) -> None:
    assert from_global_id(to_global_id(type_name, local_id)) == (type_name, local_id)


@pytest.mark.parametrize("bad", ["", "not-base64!", to_global_id("Store", "x"), "U3RvcmU"])
def test_malformed_global_ids_are_bad_input(bad: str) -> None:
    with pytest.raises(BadUserInput):
        from_global_id(bad)


def test_a_global_id_of_another_type_is_bad_input() -> None:
    with pytest.raises(BadUserInput):
        from_global_id(to_global_id("Tenant", uuid.uuid4()), "Store")


def test_forward_pages_walk_every_row_once() -> None:
    seen: list[int] = []
    after = None
    while True:
        page = page_loaded_rows(ROWS, PageRequest(first=3, after=after), lambda row: row)
        seen += ids(page)
        assert page.total_count == 10
        if not page.page_info.has_next_page:
            break
        after = page.page_info.end_cursor
    assert seen == list(range(10))


def test_backward_pages() -> None:
    page = page_loaded_rows(ROWS, PageRequest(last=3), lambda row: row)
    assert ids(page) == [7, 8, 9]
    assert page.page_info.has_previous_page
    assert not page.page_info.has_next_page
    before = page.page_info.start_cursor
    page = page_loaded_rows(ROWS, PageRequest(last=3, before=before), lambda row: row)
    assert ids(page) == [4, 5, 6]
    assert page.page_info.has_next_page


def test_page_arguments_are_validated() -> None:
    with pytest.raises(BadUserInput):
        PageRequest(first=1, last=1)
    with pytest.raises(BadUserInput):
        PageRequest(first=101)
    with pytest.raises(BadUserInput):
        PageRequest(first=-1)
    with pytest.raises(BadUserInput):
        page_loaded_rows(ROWS, PageRequest(after="garbage"), lambda row: row)
