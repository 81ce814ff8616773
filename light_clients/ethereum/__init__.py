"""Ethereum light clients: execution layer (headers, receipt and state proofs) and consensus (sync committee)."""
