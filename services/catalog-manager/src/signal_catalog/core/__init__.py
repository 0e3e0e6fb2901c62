"""Pure logic of the catalog manager: table definitions, schema diffs, partitions, drift."""
