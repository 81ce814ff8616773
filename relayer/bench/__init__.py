"""Benchmarks that the project ships: `relayer bench relay|route|api|light-clients`."""
