"""The edges: Kinesis, Secrets Manager, Glue, CloudWatch and HTTP (the API, the dashboard)."""
