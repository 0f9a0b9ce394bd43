"""Model tooling beside the batch engine: ``convert`` (to ONNX with a parity report),
``parity`` (comparing two models' outputs), ``inspect`` (what a model file declares)."""
