"""ONNX export and its onnxruntime check, and prediction from an exported model."""
