"""hashviz: explore deep hashing for image retrieval.

The library is UI-free: importing it loads neither streamlit, umap nor torchvision.
"""

from hashviz.errors import DataUnavailableError, HashvizError, InvalidInputError, NotFittedError, StoreError

__version__ = "0.1.0"
__all__ = ["DataUnavailableError", "HashvizError", "InvalidInputError", "NotFittedError", "StoreError", "__version__"]
