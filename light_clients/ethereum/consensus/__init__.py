"""Ethereum consensus light client: the Altair sync-committee protocol, Capella+ headers (Deneb, Electra).

Modules: ``ssz`` and ``containers`` (decoding, hash_tree_root), ``preset`` and ``config`` (sizes, gindices,
fork schedules; the devnet network and clock), ``store`` (bootstrap), ``sync`` (updates), ``signing`` (BLS),
``beacon_json`` (the Beacon API's JSON form), ``beacon_client`` (a client following a Beacon API endpoint),
``portal``, ``bench``.
"""
