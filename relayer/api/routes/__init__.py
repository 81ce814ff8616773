"""The daemon's own routes, by area: health and metrics, messages, validators (checkpoints and co-signing)."""
