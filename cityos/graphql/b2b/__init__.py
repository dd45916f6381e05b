"""GraphQL of B2B: companies, company users, price lists, quotes, approvals, invoices."""
