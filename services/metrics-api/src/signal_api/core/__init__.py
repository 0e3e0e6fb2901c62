"""Pure logic of the Metrics API: parameters, queries, results, cache, limits (no I/O)."""
