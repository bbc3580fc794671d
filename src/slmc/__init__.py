"""slmc: compile small language models to plain, static-memory C for microcontrollers."""

__version__ = "0.1.0"
