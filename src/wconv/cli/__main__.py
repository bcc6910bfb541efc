import sys

from wconv.cli import main

sys.exit(main())
