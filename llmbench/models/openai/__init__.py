"""OpenAI chat and completions APIs (and any OpenAI-compatible server)."""
