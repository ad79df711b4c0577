"""Compression recipes: each turns an fp32 `Actor` into an artifact (ONNX bytes and/or a torch module)."""
