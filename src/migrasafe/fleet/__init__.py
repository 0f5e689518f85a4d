"""Fleets: one command over many databases or tenant schemas, in worker processes.

:mod:`.targets` reads the fleet (URLs, a file, a command, schemas) and shards it;
:mod:`.worker` runs one target in a worker process (the library's upgrade, status,
verify, lint); :mod:`.run` schedules targets to workers (canary, stop or keep
going, a dead worker); :mod:`.report` holds the records.
"""

from migrasafe.fleet.report import FleetReport, Record
from migrasafe.fleet.run import run_fleet
from migrasafe.fleet.targets import Target, fleet_source, load_targets, parse_shard, shard
from migrasafe.fleet.worker import Job

__all__ = ["FleetReport", "Job", "Record", "Target", "fleet_source", "load_targets",
           "parse_shard", "run_fleet", "shard"]  # fmt: skip
