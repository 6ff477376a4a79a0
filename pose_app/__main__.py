import sys

from pose_app.cli.main import main

sys.exit(main())
