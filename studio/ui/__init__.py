"""Everything that imports Qt or pyqtgraph lives here, and nowhere else in studio."""

import os

# pyqtgraph binds to whichever Qt it finds first; studio is built and tested on PySide6.
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
