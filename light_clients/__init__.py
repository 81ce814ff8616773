"""Light clients: verify headers, finality and inclusion instead of trusting one RPC node (issue 4)."""
