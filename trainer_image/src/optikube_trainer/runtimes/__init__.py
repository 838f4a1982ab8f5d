"""Deployment runtimes: the optimized model (and the baseline) made runnable in eager PyTorch,
`torch.compile` and ONNX Runtime, measured side by side, and the artifact to ship chosen."""
