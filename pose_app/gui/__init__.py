"""The PySide6 desktop app: a thin shell of widgets over the capture → pipeline → render services.

Entry point: `pose_app.gui.app.launch`, called by `pose_app.cli.app.run` (what `pose-app` with
no command runs).
"""
