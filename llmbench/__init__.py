"""llmbench: evaluate language models on classification, translation, QA and summarization."""

__version__ = "0.1.0"
