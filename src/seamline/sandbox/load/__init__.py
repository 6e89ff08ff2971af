"""Load and chaos runs: a project against its simulated landscape, judged afterwards.

`run_load` drives it and returns a `LoadReport`; `seamline.sandbox.chaos` names the faults.
"""

from seamline.sandbox.chaos import Scenario, ScenarioError, parse_scenario
from seamline.sandbox.load.landscape import Landscape
from seamline.sandbox.load.report import FlowFigures, LoadReport
from seamline.sandbox.load.runner import Progress, Traffic, run, run_load

__all__ = [
    "FlowFigures",
    "Landscape",
    "LoadReport",
    "Progress",
    "Scenario",
    "ScenarioError",
    "Traffic",
    "parse_scenario",
    "run",
    "run_load",
]
