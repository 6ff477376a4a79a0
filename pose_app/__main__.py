import sys

from pose_app.cli import main

sys.exit(main())
