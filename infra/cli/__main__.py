import sys

from infra.cli.app import main

sys.exit(main())
