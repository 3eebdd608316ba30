"""Fixtures of the viewer tests: ``browser`` (headless chromium). Helpers: ``from browser_harness import open_page``."""

from browser_harness import _browser_session, browser  # noqa: F401  (fixtures)
