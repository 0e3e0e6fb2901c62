"""Pure logic of the smoke command: outputs, marker events, check verdicts, the run's order."""
