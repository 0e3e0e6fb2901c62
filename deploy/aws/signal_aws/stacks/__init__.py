"""One module per stack: data, processing, catalog, services, producer, monitoring."""
