"""The dates model refuses what no calendar has and flags an output that is not a real date."""

from __future__ import annotations

import pytest

from demo_core.card import ModelCard
from demo_core.checkpoint import DEFAULT_ROOT
from demo_core.decoding import DecodeConfig
from demo_core.pipeline import InputError, ModelRegistry
from demo_core.serving import views
from demo_core.tasks import dates
from demo_core.tasks.input_checks import DATES, date_problem, output_problem
from tests.tiny import save_tiny_model

DATES_CARD = DEFAULT_ROOT / "dates-rnn-bahdanau" / "config.json"


@pytest.mark.parametrize("text, message", [
    ("31.02.2020", "February 2020 has no 31st"),
    ("February 30, 2021", "February 2021 has no 30th"),
    ("31 février 2020", "February 2020 has no 31st"),
    ("2021年2月30日", "February 2021 has no 30th"),
    ("29 February 2021", "February 2021 has no 29th"),
    ("30/13/2020", "there is no month 13"),
    ("next Friday", "relative dates like \"next Friday\""),
    ("yesterday", "relative dates"),
    ("banana", "no date found"),
])
def test_impossible_relative_and_missing_dates_get_specific_messages(text, message):
    """Each kind of date the model would invent an answer for is refused, saying why."""
    assert message in (date_problem(text) or "")


@pytest.mark.parametrize("text", ["29 February 2020", "4/13/1972", "27/4/2031", "4. März 2021", "2008年8月8日星期五",
                                  "Thursday, March 4th, 2021", "30 ago 1981"])
def test_real_dates_in_any_supported_form_pass(text):
    """Leap days, month-first and day-first numbers, month names and Chinese forms are accepted."""
    assert date_problem(text) is None


@pytest.mark.skipif(not DATES_CARD.is_file(), reason="dates-rnn-bahdanau is not shipped in checkpoints/")
@pytest.mark.parametrize("split", ["valid", "test"])
def test_no_generated_date_of_the_data_set_is_refused(split):
    """The checks never refuse a date the model was built for (every validation and test input)."""
    settings = dates.settings_from(ModelCard.read(DATES_CARD).dataset_options)
    refused = [text for text, _ in dates.generate(split, settings) if date_problem(text)]
    assert refused == []


def test_an_output_that_is_not_a_real_date_is_flagged():
    """2020-02-31, day 00 and non-dates are flagged; a real ISO date is not."""
    assert "February 2020 has no 31st" in output_problem(DATES, "2020-02-31")
    assert "there is no day 0" in output_problem(DATES, "2050-02-00")
    assert "YYYY-MM-DD" in output_problem(DATES, "banana")
    assert output_problem(DATES, "2021-03-04") is None and output_problem("translation", "banana") is None


def test_the_page_summary_shows_the_warning_of_a_bad_output(tmp_path):
    """An untrained dates model writes nonsense: the result carries a warning and the summary shows it."""
    save_tiny_model(tmp_path / "tiny-dates", task=DATES, task_label="Dates (toy)", source_lang="mul", target_lang="iso8601")
    translator = ModelRegistry(tmp_path).get("tiny-dates")
    result = translator.run("zwei 2020", DecodeConfig(max_len=6))
    assert result.warnings and "not a date" in result.warnings[0]
    assert result.to_json()["warnings"] == result.warnings
    assert "⚠" in views.summary(result)
    with pytest.raises(InputError, match="no 31st"):
        translator.run("31.02.2020", DecodeConfig())
