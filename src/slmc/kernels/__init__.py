"""The kernel library: hand-written C files composed by code generation (registry.py)."""
