"""atom: AToM (event-level VLM-feedback alignment of text-to-motion) as gRPC microservices."""

__version__ = "0.1.0"

import os as _os

# Nothing is ever fetched from a model hub at run time: weights come from the artifact store or
# from local directories the user gives. Without this, peft and transformers try the network.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
