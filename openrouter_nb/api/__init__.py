"""Protocol layer: OpenRouter over httpx. Knows nothing of notebooks, ledgers or policies.

Modules: ``client`` (the httpx client), ``sse`` (event-stream decoding), ``parse``
(responses and errors into typed results), ``errors`` (the exception tree), ``types``.
This package imports nothing eagerly, so that importing ``openrouter_nb`` stays fast.
"""
