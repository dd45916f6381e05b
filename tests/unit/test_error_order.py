"""Errors in response order: the position of an error's path among the response's keys and indices."""

from __future__ import annotations

from cityos.graphql.core.extensions import response_position


def test_paths_sort_by_where_they_lead_in_the_response() -> None:
    data = {"b": [{"y": None, "x": 1}, {"y": None, "x": None}], "a": None}
    paths = [["a"], ["b", 1, "y"], ["b", 0, "y"], ["b", 1, "x"], ["a", "deeper", 2]]
    ordered = sorted(paths, key=lambda path: response_position(data, path))
    assert ordered == [["b", 0, "y"], ["b", 1, "y"], ["b", 1, "x"], ["a"], ["a", "deeper", 2]]
    assert response_position(data, ["b", 5, "z"]) == (0, 5, 0)
