"""ERPNext (accounting): customers, invoices, payments and credit notes of our orders, through the outbox."""
