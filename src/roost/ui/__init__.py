"""Templates and static files of the web UI served at /ui (shipped in the wheel)."""
