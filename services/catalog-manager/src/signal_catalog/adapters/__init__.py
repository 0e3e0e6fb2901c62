"""The edges of the catalog manager: Glue, the lake (S3 or a directory), query engines."""
