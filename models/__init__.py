"""PyTorch side of pose-app: the PoseNet network, TF.js weight conversion, ONNX export, training."""
