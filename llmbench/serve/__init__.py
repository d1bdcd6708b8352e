"""``llmbench serve``: an OpenAI-compatible HTTP server over any local model adapter."""
