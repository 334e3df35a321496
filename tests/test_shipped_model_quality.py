"""The guard: a shipped model that draws the wrong digits can never land silently."""

from cgan_runtime.generator import DigitGenerator
from cgan_train.evaluate import judge_set, sample_digits
from cgan_train.judge import load_judge
from tests.conftest import SHIPPED_MODEL
from tests.test_judge import COMMITTED_JUDGE


def test_the_shipped_model_draws_the_asked_digit_at_least_99_percent_of_the_time_for_every_digit():
    judge, _ = load_judge(COMMITTED_JUDGE)
    generator = DigitGenerator(SHIPPED_MODEL, device="cpu")
    judged = judge_set(judge, *sample_digits(generator, per_digit=1000))
    for digit in range(10):
        accuracy = (judged.of_digit(digit).predictions == digit).mean()
        assert accuracy >= 0.99, f"digit {digit}: only {accuracy:.1%} judged as {digit}"
