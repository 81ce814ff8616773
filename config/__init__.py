"""Typed settings: pydantic models, the loader (file -> env overrides -> CLI) and example configs."""
