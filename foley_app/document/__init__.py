"""The document layer: project data and file format, time math, the QObject document and its undo commands.

Uses QtCore/QtGui only (signals, QUndoStack); never QtWidgets or pyqtgraph.
"""
