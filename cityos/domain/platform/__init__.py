"""Platform: audit log (outbox and webhook inbox come with the integrations)."""
