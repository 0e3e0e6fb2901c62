"""A local stand-in for the part of AWS Glue's `awsglue` package the Glue entry point uses.

Not AWS code: GlueContext, Job and getResolvedOptions with the behaviour the entry point relies
on (a Spark session from the SparkContext, init/commit bookkeeping, `--name value` parsing that
fails on a missing name), so the entry point runs end to end on local Spark in tests.
"""
