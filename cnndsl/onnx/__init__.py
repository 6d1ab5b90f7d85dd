"""ir.Graph -> ONNX: lowering, graph passes, streamed protobuf writing, guarded compiling, int8."""
