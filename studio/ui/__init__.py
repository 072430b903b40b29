"""Everything that imports Qt or pyqtgraph lives here, and nowhere else in studio."""
