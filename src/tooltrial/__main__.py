import sys

from tooltrial.cli import main

sys.exit(main())
