"""The daemon's HTTP API: the front (connection caps, header limits), the request guard, routes."""
