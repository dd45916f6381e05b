"""Variables as bind parameters (cityos.graphql.core.compiler.templates): which leaves of the variables may be
parameters, the markers that reveal a transforming query builder, and the slots found by comparing compilations."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from cityos.graphql.core.compiler import templates
from cityos.graphql.core.relay import to_global_id


def test_string_leaves_are_parameters_and_the_rest_is_the_key() -> None:
    category = uuid.uuid4()
    shape = templates.shape_of({"filter": {"categoryId": to_global_id("Category", category), "search": "linen"},
                                "first": 24, "sort": "NEWEST", "after": "a=b/c", "flag": True, "none": None})
    assert shape is not None
    kinds = {leaf.path: (leaf.kind, leaf.type_name, leaf.key) for leaf in shape.leaves}
    assert kinds == {("filter", "categoryId"): ("gid", "Category", category), ("filter", "search"): ("str", None, None),
                     ("sort",): ("str", None, None)}
    other = templates.shape_of({"filter": {"categoryId": to_global_id("Category", uuid.uuid4()), "search": "wool"},
                                "first": 24, "sort": "TITLE", "after": "a=b/c", "flag": True, "none": None})
    assert other is not None and other.key == shape.key  # same shape: other values of the same leaves
    for changed in ({"first": 12}, {"after": "x=y"}, {"flag": 1}, {"filter": {"categoryId": to_global_id(
            "Vendor", category), "search": "linen"}}):
        assert templates.shape_of({**{"filter": {"categoryId": to_global_id("Category", category),
                                                 "search": "linen"}, "first": 24, "sort": "NEWEST",
                                      "after": "a=b/c", "flag": True, "none": None}, **changed}).key != shape.key


def test_strings_a_builder_could_change_are_taken_by_value() -> None:
    for value in (" linen", "linen ", "", "50%", "a_b", "x" * 65, "Ünïcode", "a\tb", "it's"):
        shape = templates.shape_of({"v": value})
        assert shape is not None and shape.leaves == (), value
    assert templates.shape_of({"v": object()}) is None


def test_markers_are_their_class_and_reveal_transforms() -> None:
    shape = templates.shape_of({"a": "x", "b": "y", "c": to_global_id("Product", uuid.uuid4())})
    assert shape is not None
    markers = templates.markers_for(shape)
    texts = [marker.value for marker in markers if marker.kind == "str"]
    assert len(set(texts)) == 2
    for text in texts:
        assert templates.SAFE_TEXT.fullmatch(text) and len(text) == 64
        assert text.lower() != text and text.upper() != text and "  " in text and " ".join(text.split()) != text
    gid = markers[2]
    assert gid.kind == "gid" and gid.value == to_global_id("Product", gid.key)  # type: ignore[arg-type]


def test_slots_follow_the_markers_and_refuse_anything_else() -> None:
    key = uuid.uuid4()
    shape = templates.shape_of({"h": "linen-throw", "c": to_global_id("Category", key)})
    assert shape is not None
    markers = templates.markers_for(shape)
    assert [leaf.path for leaf in shape.leaves] == [("c",), ("h",)]  # in the order of the names
    real = ("linen-throw", key, 5, str(key))
    marked = (markers[1].value, markers[0].key, 5, str(markers[0].key))
    slots = templates.slots_of(real, marked, shape, markers)
    assert slots == (("raw", 1), ("uuid", 0), ("=", 5), ("text", 0))
    other = uuid.uuid4()
    request = templates.shape_of({"h": "oak-table", "c": to_global_id("Category", other)})
    assert request is not None
    assert templates.parameters(slots, request.leaves) == ("oak-table", other, 5, str(other))
    # a builder that lower-cased or trimmed: the marker is not itself there
    assert templates.slots_of(("linen-throw",), (markers[1].value.lower(),), shape, markers) is None
    assert templates.slots_of(("linen-throw",), (" ".join(markers[1].value.split()),), shape, markers) is None
    # a constant that changed with the leaves, a parameter more or less, the real value not where the marker is
    assert templates.slots_of((1,), (2,), shape, markers) is None
    assert templates.slots_of(real, marked[:3], shape, markers) is None
    assert templates.slots_of(("other",), (markers[1].value,), shape, markers) is None


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children,
                                                                                       max_size=3), max_leaves=10))
def test_substituting_a_shapes_own_leaves_gives_the_variables_back(value: object) -> None:
    variables = {"v": value}
    shape = templates.shape_of(variables)
    assert shape is not None
    assert templates.substituted(variables, shape.leaves) == variables
    markers = templates.markers_for(shape)
    again = templates.shape_of(templates.substituted(variables, markers))
    assert again is not None and again.key == shape.key


def test_only_string_and_id_variables_hold_leaves() -> None:
    from cityos.graphql.schema import schema
    from graphql import parse

    document = parse("query Q($f: ProductFilter, $s: ProductSort, $h: String!, $ids: [ID!]!, $c: String) "
                     "{ __typename }")
    operation = document.definitions[0]
    textual = templates.textual_paths(schema._schema, operation)  # type: ignore[arg-type]
    assert textual(("h",)) and textual(("ids", 0)) and textual(("f", "search")) and textual(("f", "categoryId"))
    assert not textual(("s",)) and not textual(("f", "status")) and not textual(("ids",)) and not textual(("x",))
    shape = templates.shape_of({"s": "NEWEST", "h": "linen", "f": {"status": "PUBLISHED", "search": "oak"}},
                               textual)
    assert shape is not None and [leaf.path for leaf in shape.leaves] == [("f", "search"), ("h",)]
