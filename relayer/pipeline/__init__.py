"""The relay pipeline: index at finality, attest, collect checkpoints, deliver in batches, confirm."""
