"""Gateway integrations: code that runs inside a gateway process, not in the server.

`serving.gateways.litellm_hook` is loaded by the LiteLLM proxy (``callbacks:`` in its
config.yaml). The /route server never imports this package, so gateway libraries
(litellm, httpx) never load in the server process.
"""
