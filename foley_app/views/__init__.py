"""Widgets. They read the document and subscribe to it; edits go through commands (via the editor)."""
