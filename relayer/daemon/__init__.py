"""The daemon: composition of the pipeline, its jobs (health, hand-over, audit), metrics and logs."""
