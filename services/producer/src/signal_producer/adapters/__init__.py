"""The producer's edges: the Kinesis writer, fault injection and the output files."""
