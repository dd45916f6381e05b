"""The compiled read path (DESIGN.md §9, issue 12): a query operation's root fields, when the type declarations
cover their whole selection sets, become one SQL statement each that builds the field's JSON inside Postgres.

- `shapes`: how each GraphQL object type reads from SQL — its table, the scalar fields that are columns (derived
  from the `Declaration` and the strawberry definition), and the relations (connections, lists, to-one).
- `selection`: walks a validated operation (fragments, inline fragments, aliases, variables, @include/@skip) into
  a principal-independent plan, or says it is not covered.
- `sql`: turns a plan plus the request's Cerbos query plans into one SQLAlchemy statement per root field.
- `route`: the schema extension that runs compiled operations and lets every other one fall back to resolvers.
"""
