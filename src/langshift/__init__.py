"""langshift: move an English-centric LLM into another language."""

__version__ = "0.1.0"
