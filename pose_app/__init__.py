"""pose-app: real-time human pose detection with a PoseNet-style CNN on onnxruntime."""

__version__ = "0.1.0"
