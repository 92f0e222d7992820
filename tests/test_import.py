import subprocess
import sys


def test_import_hashviz_is_ui_free():
    code = ("import sys, hashviz, hashviz.codes, hashviz.embeddings, hashviz.evaluate, hashviz.cli;"
            "import hashviz.retrieval.metrics, hashviz.quantize;"
            "heavy = [m for m in ('streamlit', 'umap', 'torchvision') if m in sys.modules];"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
