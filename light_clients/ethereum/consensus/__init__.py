"""Ethereum consensus light client: the Altair sync-committee protocol, Capella+ headers (Deneb, Electra).

Modules: ``ssz`` and ``containers`` (decoding, hash_tree_root), ``preset`` and ``config`` (sizes, gindices,
fork schedules), ``store`` (bootstrap), ``sync`` (updates), ``signing`` (BLS), ``portal``, ``bench``.
"""
