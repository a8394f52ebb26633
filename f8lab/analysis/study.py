"""The study notebooks' shared set-up and shared runs.

Every notebook starts with ``study = Study.start(PROFILE, RESULTS_DIR)``: the profile is
checked, the results and figures folders exist, the figures take the study's theme. The
float ResNet-18 and the conventional 8-bit run started from it are the same runs in every
notebook (``float_run``, ``fixed_point_run``): the first notebook that needs one trains
it, the others reload it.

The default profile is the study; the quick profile is sized for CI, and its numbers are
not findings. ``Study.finding`` sets a quick run's figure beside the default run's, as
recorded in ``notebooks/executed/<notebook>.json`` (``make demo`` refreshes those records
and the executed notebooks beside them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from f8lab.analysis.plots import use_theme
from f8lab.train import RunConfig, TrainResult, load_config, train_once

STUDY_PROFILES = ("quick", "default")
FLOAT_RUN, FIXED_POINT_RUN = "resnet18_fp", "resnet18_f8"
DEFAULT_RECORDS = "executed"  # beside the notebooks: the default run's records


@dataclass(frozen=True)
class Study:
    """Where a notebook's runs, figures and records go, and the runs the notebooks share."""

    profile: str
    results: Path
    configs: Path
    default_records: Path = Path(DEFAULT_RECORDS)
    _runs: dict[str, TrainResult] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def start(
        cls,
        profile: str,
        results_dir: str | Path | None = None,
        configs: str | Path = "../configs/fashion_mnist",
    ) -> Study:
        """Check ``profile``, create ``results_dir`` (default ``../results/<profile>``) and
        its ``figures`` folder, and set the figures' theme."""
        if profile not in STUDY_PROFILES:
            raise ValueError(f"PROFILE {profile!r} is not one of {list(STUDY_PROFILES)}")
        study = cls(profile, Path(results_dir or f"../results/{profile}"), Path(configs))
        study.figures.mkdir(parents=True, exist_ok=True)
        use_theme()
        if profile == "quick":
            print(
                "quick profile: sized for CI, its numbers are not findings; each figure below "
                "is followed by the default run's"
            )
        return study

    @property
    def figures(self) -> Path:
        return self.results / "figures"

    def size(self, sizes: dict[str, dict]) -> dict:
        """This profile's entry of a notebook's ``{profile: sizes}``."""
        if self.profile not in sizes:
            raise ValueError(f"no sizes for profile {self.profile!r}: give one of {list(sizes)}")
        return sizes[self.profile]

    def config(self, name: str, *overrides: str) -> RunConfig:
        """``configs/<name>.yaml`` in this profile, with ``section.key=value`` overrides."""
        return load_config(self.configs / f"{name}.yaml", self.profile, list(overrides))

    @property
    def float_init(self) -> str:
        """The override that starts a fixed-point run from the shared float run."""
        return f"run.init={self.results / FLOAT_RUN / 'best.pt'}"

    def float_run(self) -> TrainResult:
        """The float ResNet-18, trained once for every notebook (and read once per study)."""
        if FLOAT_RUN not in self._runs:
            self._runs[FLOAT_RUN] = train_once(self.config(FLOAT_RUN), self.results / FLOAT_RUN)
        return self._runs[FLOAT_RUN]

    def fixed_point_run(self) -> TrainResult:
        """The conventional 8-bit ResNet-18 from the float run (which it trains if needed)."""
        self.float_run()
        return train_once(self.config(FIXED_POINT_RUN, self.float_init), self.results / FIXED_POINT_RUN)

    def write_record(self, name: str, record: dict) -> dict:
        """Write a notebook's key figures to ``<results>/<name>.json``; returns them."""
        (self.results / f"{name}.json").write_text(json.dumps(record, indent=2))
        return record

    def default_record(self, name: str) -> dict | None:
        """The record that notebook ``name`` wrote in the default run, as committed beside
        the notebooks; None where there is none."""
        path = self.default_records / f"{name}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def finding(self, value: float, name: str, *key: str, fmt: str = "{:.2f}") -> str:
        """``value`` as this run measured it; in the quick profile, followed by the default
        run's figure, ``record[key[0]][key[1]]...`` of notebook ``name``'s default record."""
        shown = fmt.format(value)
        if self.profile == "default":
            return shown
        found: object = self.default_record(name)
        for part in key:
            found = found.get(part) if isinstance(found, dict) else None
        if not isinstance(found, (int, float)):
            return f"{shown} (quick run; no default-run figure recorded)"
        return f"{shown} (quick run; the default run: {fmt.format(found)})"
