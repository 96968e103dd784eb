"""Reusable fakes for tests: stand-ins at library boundaries, never at our own code."""
