"""Rate and time left from progress reports (a fake clock: no test depends on real time)."""

from __future__ import annotations

import pytest

from hashviz.progress import StageClock, format_duration, rate_text


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (0.2, "1 s"), (59, "59 s"), (59.5, "1 min"), (60, "1 min"),
                                           (61, "2 min"), (3599, "1 h 00 min"), (3600, "1 h 00 min"),
                                           (3600 + 5 * 60 + 1, "1 h 06 min")])
def test_format_duration_rounds_up(seconds, text):
    assert format_duration(seconds) == text


def test_rate_text():
    assert rate_text(0, 100, 5.0, "img") == ""
    assert rate_text(10, 100, 0.0, "img") == ""
    assert rate_text(1600, 60_000, 2.0, "img") == "800 img/s, about 2 min left"  # 58,400 / 800 = 73 s, rounded up
    assert rate_text(17, 60_000, 1.0, "img") == "17.0 img/s, about 59 min left"  # 59,983 / 17 = 3528.4 s
    assert rate_text(1, 10, 4.0, "fits") == "0.25 fits/s, about 36 s left"
    assert rate_text(100, 100, 2.0, "steps") == "50.0 steps/s"
    assert rate_text(200_000, 10**6, 1.0, "") == "200,000 /s, about 4 s left"


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_stage_clock_measures_from_the_first_report_of_each_stage():
    clock = FakeClock()
    sc = StageClock(clock)
    assert sc.text("features") == ""
    sc("features", 256, 60_000)  # first batch after the model loaded: the clock starts here
    assert sc.text("features") == ""
    clock.t += 10
    sc("features", 2_816, 60_000)  # 2,560 images in 10 s
    assert sc.text("features") == "256 img/s, about 4 min left"  # 57,184 / 256 = 223.4 s
    clock.t += 1
    sc("heads", 10, 400)
    clock.t += 2
    sc("heads", 30, 400)
    assert sc.text("heads") == "10.0 steps/s, about 37 s left"
    assert sc.text("heads", unit="it") == "10.0 it/s, about 37 s left"
    assert sc.text("features") == "256 img/s, about 4 min left"  # unchanged by other stages


def test_a_cache_hit_shows_no_rate():
    sc = StageClock(FakeClock())
    sc("features", 5000, 5000)
    assert sc.text("features") == ""


def test_a_preparation_job_reports_rates_per_stage(tmp_path, monkeypatch):
    """The app's background preparation keeps a StageClock: after the run each stage with more than one report
    has its rate (no time left: it finished)."""
    import re

    from hashviz.session.jobs import PrepareJob

    monkeypatch.setenv("HASHVIZ_HOME", str(tmp_path))
    job = PrepareJob({"dataset": "digits", "backbone": "mnist_cnn", "head": "cel", "bit_lengths": [16],
                      "head_options": {"epochs": 1}}).start()
    assert job.join(300).status == "done", (job.status, job.message, job.error)
    assert job.stages["features"] == (1797, 1797)
    assert re.fullmatch(r"[\d,.]+ img/s", job.clock.text("features")), job.clock.text("features")
    assert re.fullmatch(r"[\d,.]+ steps/s", job.clock.text("heads")), job.clock.text("heads")
