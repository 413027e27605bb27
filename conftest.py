"""Wires the harness and reporting plugins into every pytest run of this tree; nothing else."""
pytest_plugins = ["fixtures.plugin", "reports.plugin"]
