"""The compiler's relation registry says what each relation's resolver does, and its scalar fields are exactly
the fields `Declared.from_row` reads from a column of the same name."""

from __future__ import annotations

import inspect

from cityos.graphql.core.compiler.shapes import RELATIONS, shapes_of
from cityos.graphql.core.nodes import DECLARATIONS
from cityos.graphql.schema import schema
from graphql import GraphQLObjectType

SOURCES = {
    "connection": 'page_children(info, {child}, "{column}"',
    "list": 'many_by_key({table}, "{column}")',
    "one": "by_key({table}).load(self.{parent_column}",
}


def resolver_source(type_name: str, field_name: str) -> str:
    graphql_type = schema._schema.get_type(type_name)
    assert isinstance(graphql_type, GraphQLObjectType)
    definition = graphql_type.fields[field_name].extensions["strawberry-definition"]
    assert definition.base_resolver is not None, (type_name, field_name)
    return " ".join(inspect.getsource(definition.base_resolver.wrapped_func).split())


def test_every_relation_matches_its_resolver() -> None:
    shapes = shapes_of(schema._schema)
    for (type_name, field_name), relation in RELATIONS.items():
        source = resolver_source(type_name, field_name)
        child = shapes.by_name[relation.child]
        if relation.kind == "connection":
            names = {f'declared("{relation.child}")', child.table.name.upper(),
                     f"{child.table.name.upper()}_TABLE"} | {name for name, value in DECLARATIONS.items()
                                                            if value is child.declaration}
            assert any(SOURCES["connection"].format(child=name, column=relation.child_column) in source
                       or f'{name.upper()}, "{relation.child_column}"' in source for name in names), source
            planned = "planned=True" in source
            # Unplanned page_children keep what CheckResources allows; the compiler uses the read plan.
            assert planned or (type_name, field_name) in {("Store", "domains"), ("Store", "salesChannels")}
        elif relation.kind == "list":
            assert f'"{relation.child_column}").load(self.pk)' in source, source
        else:
            assert f"self.{relation.parent_column[:-3]}_pk" in source and ".by_key(" in source, source


def test_declared_scalars_are_columns_read_as_is() -> None:
    shapes = shapes_of(schema._schema)
    for type_name, declaration in DECLARATIONS.items():
        shape = shapes.by_name[type_name]
        for field_name in shape.scalars:
            graphql_type = schema._schema.get_type(type_name)
            assert isinstance(graphql_type, GraphQLObjectType)
            definition = graphql_type.fields[field_name].extensions["strawberry-definition"]
            assert definition.base_resolver is None and not definition.extensions
            assert definition.python_name not in declaration.fields
            assert definition.python_name == "id" or definition.python_name in declaration.table.c
    # Guarded, converted and resolved fields stay out: they fall back.
    vendor = shapes.by_name["Vendor"].scalars
    assert "contactEmail" not in vendor and "status" not in vendor and "requirements" not in vendor
    assert "thumbnail" not in shapes.by_name["Product"].scalars
