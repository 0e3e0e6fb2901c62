"""The API's routes, one module per area: `kpis` (time series per operator, provider, postal
code, quality band), `network` (coverage, alerts, summary), `pipeline` (processor health),
`meta` (the quality-band definition) and `ops` (liveness, readiness, Prometheus). Each /v1
router requires `deps.client`."""
