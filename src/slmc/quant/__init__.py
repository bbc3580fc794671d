"""Quantization: q8 group quantization (llama2.c runq semantics); integer-only PTQ comes later."""
