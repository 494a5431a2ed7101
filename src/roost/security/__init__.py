"""Who may do what: tenants, API keys, authentication, and the audit log."""
