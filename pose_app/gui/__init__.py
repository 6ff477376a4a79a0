"""The PySide6 desktop app: a thin shell of widgets over the capture → pipeline → render services.

Entry point: `pose_app.gui.app.run(args)` (what `pose-app` with no command runs).
"""
