"""The compiled read path (DESIGN.md §9, issue 12): a query operation's root fields, when the type declarations
cover their whole selection sets, become one SQL statement each that builds the field's JSON inside Postgres.

- `shapes`: how each GraphQL object type reads from SQL — its table, the scalar fields that are columns (derived
  from the `Declaration` and the strawberry definition), the relations (connections, lists, to-one, linked) and the
  guarded fields (their field permission).
- `selection`: walks a validated operation (fragments, inline fragments, aliases, variables, @include/@skip,
  paging, filters and sorts) into a principal-independent plan, or says it is not covered.
- `plans`: which Cerbos query plans (kind, action) a plan needs, and how a plan's clause applies to a row.
- `jsontext`: JSON text built in SQL byte for byte as orjson writes it (JSON documents from jsonb too; one Python
  would write otherwise marks its root field for the resolvers).
- `pricing`: volume pricing (`Variant.tiers`, `Variant.unitPrice`). The unit price is the catalog's one pricing
  rule in its SQL form (`catalog.queries.unit_price`, beside the Python `rules.unit_price` and held equal to it by
  a hypothesis property test), not Python run over the compiled JSON: that would parse the answer back and
  re-serialise it, the per-field cost compiling removes.
- `sql`: turns a plan plus the request's query plans into one SQLAlchemy statement per root field.
- `masks`: turns the denial markers of guarded fields into nulls and the resolvers' FORBIDDEN errors.
- `route`: the schema extension that runs compiled operations and lets every other one fall back to resolvers.
"""
