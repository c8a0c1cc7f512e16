"""Durable delivery: every submission to central is written here first."""
