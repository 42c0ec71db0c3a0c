import sys

from models.train.train import main

sys.exit(main())
