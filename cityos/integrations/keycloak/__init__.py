"""Keycloak as the platform's identity provider for calls out: our service account's access tokens."""
