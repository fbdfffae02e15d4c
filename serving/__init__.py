"""Serving: bundle loading, the decision policy, the /route app and its commands.

Runs on onnxruntime, tokenizers, numpy and FastAPI only; never imports the
training stack and never loads a pickle.
"""
