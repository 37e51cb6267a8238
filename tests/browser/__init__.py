"""Real-browser tests: JupyterLab + Playwright (sync API) + Debian's chromium, fully offline."""
