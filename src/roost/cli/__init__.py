"""The ``roost`` command line: one module per command group."""
