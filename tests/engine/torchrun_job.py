"""tools/lazyconfig_train_net.py for the torchrun tests, with one fault on demand: when
``MEMATTE_TEST_DIE_AT`` is set, rank 1 of torchrun's first attempt exits abruptly at that
iteration (as a killed or crashed worker), so that ``--max-restarts`` has something to do."""

import os
import sys

from mematte_d2.cli.train import cli
from mematte_d2.engine import MattingTrainer

_run_step = MattingTrainer.run_step


def _run_step_or_die(self) -> None:
    die_at = os.environ.get("MEMATTE_TEST_DIE_AT")
    if (die_at is not None and self.iter == int(die_at) and os.environ["RANK"] == "1"
            and os.environ["TORCHELASTIC_RESTART_COUNT"] == "0"):
        os._exit(3)
    _run_step(self)


MattingTrainer.run_step = _run_step_or_die

if __name__ == "__main__":
    sys.exit(cli())
