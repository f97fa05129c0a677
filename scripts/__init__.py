"""Helper scripts run by the Makefile; importable by the tests and benchmarks that share them."""
