"""Ethereum consensus light client: the Altair sync-committee protocol with Capella+ headers (Deneb, Electra)."""
