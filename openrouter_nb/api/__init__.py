"""Protocol layer: OpenRouter over httpx. Knows nothing of notebooks, ledgers or policies.

Modules: ``client`` (the httpx client), ``sse`` (event-stream decoding), ``stream``
(streamed payloads into deltas and a result), ``parse`` (responses and errors into typed
results), ``assistant`` (reasoning, tool calls and annotations of a turn), ``errors`` (the
exception tree), ``types``, ``cassette`` (record and replay transports), ``_json`` (safe JSON
decoding).
This package imports nothing eagerly, so that importing ``openrouter_nb`` stays fast.
"""
