"""HTTP around the GraphQL endpoint: health, metrics, request ids, body limits."""
