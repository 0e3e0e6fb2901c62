"""What the CLI and the Lambda do, one module per use case (mirroring core/): sync (tables,
views, partitions: sync, watch, S3 events), crawlers, checks (drift, validate) and compaction.

Each operation takes its adapters (catalog, lake, query engine) as arguments, so tests and entry
points wire them the same way (wiring.py builds them from settings).
"""
