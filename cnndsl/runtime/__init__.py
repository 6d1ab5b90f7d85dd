"""Running models with onnxruntime: providers and device choice, inputs, timing."""
