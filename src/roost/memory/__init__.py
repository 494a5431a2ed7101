"""Memory and knowledge: short-term windows, long-term and procedural memory,
consolidation, and the knowledge base, all over one vector + text store."""
