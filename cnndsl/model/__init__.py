"""Analysis: syntax.Spec -> checked ir.Graph (blocks expanded, names, shapes, counts). Pure Python:
never imports numpy, onnx or onnxruntime, so `cnndsl params` stays fast."""
