"""B2B: companies and their users, credit and invoices, quotes with versions and messages, approvals."""
