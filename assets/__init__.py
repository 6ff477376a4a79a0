"""Files pose-app ships: converted ONNX models (installed as the package pose_app.assets)."""
