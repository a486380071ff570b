import sys

from ._process import main

raise SystemExit(main(sys.argv[1:]))
