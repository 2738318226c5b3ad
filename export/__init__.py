"""torch -> ONNX export of the live step, and parity checks against torch."""
