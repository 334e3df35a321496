"""Corrupt and hand-edited checkpoints (and judges) are caught at load, with one line naming the file:
flipped bits that torch.load would take as quietly wrong weights, missing pieces, wrong types."""

import zipfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from cgan_train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from cgan_train.judge import JudgeError, load_judge
from tests.conftest import REPO_ROOT, train_cli

pytestmark = pytest.mark.faults


def flip_a_bit_in_the_largest_tensor(path: Path) -> None:
    """One bit of a weight's bytes flipped, the zip structure intact: torch.load still loads it."""
    with zipfile.ZipFile(path) as archive:
        record = max(archive.infolist(), key=lambda info: info.file_size)
    data = bytearray(path.read_bytes())
    start = record.header_offset + 30 + len(record.filename.encode()) + len(record.extra)
    data[start + record.file_size // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _edited(run_copy: Path, edit) -> Path:
    state = load_checkpoint(run_copy / "checkpoint.pt", for_training=True)
    state["config"] = state["config"].to_dict()
    edit(state)
    save_checkpoint(run_copy / "checkpoint.pt", state)
    return run_copy / "checkpoint.pt"


def test_a_flipped_bit_in_a_weight_is_caught_though_torch_loads_it(run_copy):
    checkpoint = run_copy / "checkpoint.pt"
    flip_a_bit_in_the_largest_tensor(checkpoint)
    torch.load(checkpoint, weights_only=True)  # what the check is for: torch sees nothing wrong
    with pytest.raises(CheckpointError, match=r"checkpoint.pt: corrupt: record .* fails its CRC check"):
        load_checkpoint(checkpoint)


def test_a_flipped_bit_stops_export_and_resume_with_one_line(run_copy, tmp_path):
    from cgan_export.cli import export_command as export_main

    checkpoint = run_copy / "checkpoint.pt"
    flip_a_bit_in_the_largest_tensor(checkpoint)
    exported = CliRunner().invoke(
        export_main, ["--checkpoint", str(checkpoint), "--out-dir", str(tmp_path / "m")]
    )
    resumed = train_cli("--out", str(run_copy), "--resume")
    for result in (exported, resumed):
        assert result.exit_code == 1
        assert f"{checkpoint}: corrupt: record" in result.output and "fails its CRC check" in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


EDITS = {
    "a missing history": (lambda state: state.pop("history"), "lacks history"),
    "a missing discriminator": (lambda state: state.pop("discriminator"), "lacks discriminator"),
    "an epoch as text": (lambda state: state.update(epoch="2"), "epoch is '2', not a whole number"),
    "an infinite epoch": (lambda state: state.update(epoch=float("inf")), "epoch is inf, not a whole number"),
    "an epoch past the run's end": (
        lambda state: state.update(epoch=7),
        "epoch is 7, not a whole number in 0-2",
    ),
    "a history of the wrong length": (lambda state: state["history"].pop(), "history has 1 epochs, the"),
    "a NaN loss in the history": (
        lambda state: state["history"][0].update(d_loss=float("nan")),
        "a history entry is",
    ),
    "a history entry nested 100 deep": (
        lambda state: state["history"].__setitem__(0, _nested(100)),
        "a history entry is [[[[[[[...]]]]]]], not",  # bounded, where a whole repr overflowed the stack
    ),
    "an integer beyond any float in the history": (
        lambda state: state["history"][0].update(seconds=10**400),
        "a history entry is",
    ),
    "an integer beyond any float in the config": (
        lambda state: state["config"].update(match_weight=10**400),
        "match_weight must be a finite number, got 1000",
    ),
    "a beta1 of 1": (lambda state: state["config"].update(beta1=1.0), "beta1 must be in [0, 1), got 1.0"),
    "a seed beyond 64 bits": (
        lambda state: state["config"].update(seed=2**70),
        "seed must be in 0-18446744073709551615",
    ),
    "a learning rate as text": (
        lambda state: state["config"].update(lr="fast"),
        "lr is 'fast', not a finite number",
    ),
    "an unknown design": (lambda state: state["config"].update(design="gan9000"), "unknown model design"),
    "a config far larger than its weights": (
        lambda state: state["config"].update(latent_dim=10**9),
        "generator weights do not fit the mlp design",
    ),
    "weights of the wrong shape": (
        lambda state: state["generator"].update({"net.0.weight": torch.zeros(3, 3)}),
        "generator weights do not fit",
    ),
    "a weight that is not a tensor": (
        lambda state: state["generator"].update({"net.0.weight": [1.0]}),
        "generator weights do not fit",
    ),
    "provenance without the data digest": (
        lambda state: state["provenance"].pop("data_sha256"),
        "lacks one of data_sha256",
    ),
    "an optimiser state that is not one": (
        lambda state: state.update(opt_generator={"lr": 1}),
        "opt_generator is not an optimiser's state",
    ),
    "a random state that is not one": (
        lambda state: state["rng"].update(torch=torch.zeros(3)),
        "rng is not a random state torch saved",
    ),
}


def _nested(depth: int) -> list:
    nested: list = []
    for _ in range(depth):
        nested = [nested]
    return nested


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_hand_edited_checkpoint_is_one_line_naming_the_file(run_copy, edit):
    change, message = EDITS[edit]
    checkpoint = _edited(run_copy, change)
    result = train_cli("--out", str(run_copy), "--resume")
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: {checkpoint}: ") and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_part_done_epoch_whose_order_is_not_a_permutation_is_refused(run_copy):
    def scramble(state):
        state["epoch"], state["history"] = 1, state["history"][:1]
        state["epoch_progress"] = {
            "order": torch.zeros(300, dtype=torch.int64),
            "step": 3,
            "totals": torch.zeros(4),
            "seconds": 1.0,
        }

    _edited(run_copy, scramble)
    result = train_cli("--out", str(run_copy), "--resume")
    assert result.exit_code == 1
    assert "epoch_progress is not a part-done epoch this code saved" in result.output


def test_resuming_from_a_generator_only_checkpoint_says_why_it_cannot(run_copy, exported_dir):
    (run_copy / "checkpoint.pt").write_bytes((exported_dir / "cgan_generator.pt").read_bytes())
    result = train_cli("--out", str(run_copy), "--resume")
    assert result.exit_code == 1
    assert "holds a generator only (no discriminator, optimisers or random state)" in result.output


def test_a_flipped_bit_in_the_judge_is_caught(tmp_path):
    judge = tmp_path / "judge.pt"
    judge.write_bytes((REPO_ROOT / "models" / "judge.pt").read_bytes())
    flip_a_bit_in_the_largest_tensor(judge)
    with pytest.raises(JudgeError, match="not a readable judge file: corrupt: record .* fails its CRC check"):
        load_judge(judge)


def test_a_judge_record_of_the_wrong_types_is_refused(tmp_path):
    state = torch.load(REPO_ROOT / "models" / "judge.pt", weights_only=True)
    state["test_accuracy"] = "99%"
    torch.save(state, tmp_path / "judge.pt")
    with pytest.raises(JudgeError, match="the judge's record .* is not what `cgan-train judge` writes"):
        load_judge(tmp_path / "judge.pt")
