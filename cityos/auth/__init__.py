"""Authentication (tokens → Principal) and authorization (the Cerbos PDP)."""
