"""Verdict model, report renderers (JSON + schema, JUnit XML, HTML) and the pytest plugin that writes runs/."""
