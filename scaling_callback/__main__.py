import sys

from scaling_callback.cli import main

sys.exit(main())
