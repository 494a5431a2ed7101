"""HTTP adapters: parse, call a service, encode. No business logic lives here."""
