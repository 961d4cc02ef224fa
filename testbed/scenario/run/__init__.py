"""A scenario run (`testbed run`), split by concern:

  options.py    what to run, and every input check before a lab exists (prepare)
  run.py        the orchestration: lab up, record, play, finish whatever happens
  recording.py  captures, the testbed exporter, the run's Prometheus
  watcher.py    crashes noticed, reboots by other commands seen, progress lines
  trigger.py    when the trigger (restart wave, crash) happened
  results.py    run.json, verdicts, series.csv, summary.json, TSDB snapshot, report
"""

from testbed.scenario.run.options import Prepared, RunOptions, prepare
from testbed.scenario.run.run import Run

__all__ = ["Prepared", "Run", "RunOptions", "prepare"]
