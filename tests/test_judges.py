"""The judges: several networks, pinned by SHA-256 in models/judges.json; a changed file is refused."""

import json
import shutil

import pytest
import torch

from cgan_train.classifiers import NETWORKS, PixelMLP, Recipe, random_affine, random_shift
from cgan_train.data import load_mnist
from cgan_train.judge import JudgeError, judge_images, load_judge
from cgan_train.judges import JUDGE_SET, PRIMARY, file_sha256, load_judges, record_judges
from tests.conftest import COMMITTED_JUDGE, COMMITTED_JUDGES, FIXTURE_DATA, REPO_ROOT
from tests.helpers import evaluate_on_fixture


def test_the_committed_judges_are_three_networks_of_other_architectures_and_seeds_one_not_a_cnn():
    judges = load_judges(COMMITTED_JUDGES)
    assert [judge.name for judge in judges] == [spec.name for spec in JUDGE_SET]
    assert judges[0].primary and judges[0].name == PRIMARY and judges[0].path == COMMITTED_JUDGE
    assert len({judge.record["architecture"] for judge in judges}) == len(judges) >= 3
    manifest = json.loads(COMMITTED_JUDGES.read_text())["judges"]
    assert len({entry["seed"] for entry in manifest}) == len(manifest)
    mlp = [judge for judge in judges if isinstance(judge.network, PixelMLP)]
    assert mlp and not any(isinstance(module, torch.nn.Conv2d) for module in mlp[0].network.modules())
    for judge, entry in zip(judges, manifest, strict=True):
        assert judge.sha256 == entry["sha256"] == file_sha256(judge.path)


def test_every_committed_judge_reads_real_digits_and_gives_its_features():
    test = load_mnist(FIXTURE_DATA, "test")
    for judge in load_judges(COMMITTED_JUDGES):
        assert judge.record["test_images"] == 10_000 and judge.record["test_accuracy"] >= 0.98, judge.name
        features, predictions = judge_images(judge.network, test.images)
        assert features.shape == (len(test), judge.network.feature_dim)
        assert (predictions == test.labels.numpy()).mean() >= 0.95, judge.name


def _copy_of_the_judges(tmp_path):
    """models/'s judges and manifest, copied: a folder the test may change."""
    folder = tmp_path / "models"
    for spec in JUDGE_SET:
        (folder / spec.file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / "models" / spec.file, folder / spec.file)
    shutil.copy2(COMMITTED_JUDGES, folder / "judges.json")
    return folder


@pytest.mark.faults
def test_a_judge_file_changed_after_it_was_recorded_is_refused_in_one_line(tmp_path):
    folder = _copy_of_the_judges(tmp_path)
    # A sound judge file, loadable, with other weights: only the digest tells it apart.
    mlp = folder / "judges" / "pixel_mlp.pt"
    state = torch.load(mlp, weights_only=True)
    state["weights"]["head.bias"] += 0.5
    torch.save(state, mlp)
    with pytest.raises(
        JudgeError, match=r"pixel_mlp.pt: SHA-256 .* is not the .* that .*judges.json records"
    ):
        load_judges(folder / "judges.json")
    result = evaluate_on_fixture(
        str(REPO_ROOT / "models" / "cgan_generator.onnx"),
        "--judges",
        str(folder / "judges.json"),
        "--json",
        str(tmp_path / "report.json"),
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "SHA-256" in lines[0], result.output
    assert not (tmp_path / "report.json").exists()


@pytest.mark.faults
def test_recording_the_judges_again_accepts_the_changed_file(tmp_path):
    folder = _copy_of_the_judges(tmp_path)
    mlp = folder / "judges" / "pixel_mlp.pt"
    state = torch.load(mlp, weights_only=True)
    state["weights"]["head.bias"] += 0.5
    torch.save(state, mlp)
    record_judges(folder)  # what make judges (or make judge) does after training
    judges = load_judges(folder / "judges.json")
    assert judges[-1].sha256 == file_sha256(mlp)


@pytest.mark.faults
@pytest.mark.parametrize(
    "change, message",
    [
        (lambda manifest: manifest["judges"][1].update(file="../../judge.pt"), "outside its folder"),
        (lambda manifest: manifest["judges"][1].update(file="judges/absent.pt"), "judge not found"),
        (lambda manifest: manifest["judges"][2].update(architecture="judge-cnn"), "where .* records"),
        (lambda manifest: manifest.update(format="other"), "not a judges manifest"),
    ],
    ids=["outside the folder", "a missing file", "another architecture", "not a manifest"],
)
def test_a_manifest_that_does_not_fit_its_files_is_refused(tmp_path, change, message):
    folder = _copy_of_the_judges(tmp_path)
    manifest = json.loads((folder / "judges.json").read_text())
    change(manifest)
    (folder / "judges.json").write_text(json.dumps(manifest))
    with pytest.raises(JudgeError, match=message):
        load_judges(folder / "judges.json")


def test_a_missing_manifest_says_how_to_make_one(tmp_path):
    with pytest.raises(JudgeError, match="make judges"):
        load_judges(tmp_path / "judges.json")


def test_the_primary_judge_file_is_the_one_it_always_was():
    # models/judge.pt predates the other judges: no architecture entry, the judge CNN.
    state = torch.load(COMMITTED_JUDGE, weights_only=True)
    assert "architecture" not in state
    assert load_judge(COMMITTED_JUDGE)[1]["architecture"] == "judge-cnn"


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_network_maps_a_batch_to_its_features_and_ten_logits(name):
    network = NETWORKS[name]().eval()
    features, logits = network(torch.zeros(3, 1, 28, 28))
    assert features.shape == (3, network.feature_dim) and logits.shape == (3, 10)


def test_augmentations_keep_the_shape_and_a_black_background():
    from cgan_train.classifiers import BLACK

    torch.manual_seed(0)
    images = torch.full((4, 1, 28, 28), BLACK)
    for augment in (random_shift, random_affine):
        out = augment(images)
        assert out.shape == images.shape
        assert torch.allclose(out, torch.full_like(out, BLACK), atol=1e-5)


def test_a_recipe_with_an_unknown_part_is_refused():
    with pytest.raises(ValueError, match="unknown"):
        Recipe(network="resnet", optimiser="adam", lr=1e-3, epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="unknown"):
        Recipe(network="pixel-mlp", optimiser="adam", lr=1e-3, epochs=1, batch_size=8, augmentation="mixup")
