"""Frontends: model files in, IR (or a DecoderModel that builds IR) out. Only onnx_import imports onnx."""
