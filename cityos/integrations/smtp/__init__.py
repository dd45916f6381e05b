"""Email over SMTP: the notification port's adapter (CITYOS_SMTP_URL)."""
