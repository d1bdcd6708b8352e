"""Local Hugging Face models: loading, prompt encoding, scoring and generation."""
