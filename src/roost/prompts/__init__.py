"""Prompt management: named prompts with immutable versions, movable labels, a config
block, rendered by a sandboxed template engine and cached in process."""
