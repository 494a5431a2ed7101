"""Who may do what: tenants, API keys, authentication, and the audit log."""

# Here rather than in tenants.py, which imports storage: the CLI names the default tenant
# in its options without loading SQLAlchemy.
DEFAULT_TENANT = "default"
