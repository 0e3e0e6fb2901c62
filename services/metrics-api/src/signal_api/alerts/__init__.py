"""Alerts (#25): rules as data, one evaluator with state and history in the lake, delivery."""
