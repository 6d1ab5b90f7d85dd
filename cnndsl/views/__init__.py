"""What a person sees: tables, diagrams, charts, feature maps, highlighting, terminal colour.
Views read the checked ir.Graph and never import onnx."""
